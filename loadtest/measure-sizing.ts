// The bench's sizing figures alone, without the load runs: a throw-away redis-server, measureSizing, its lines.
// Run: npx tsx loadtest/measure-sizing.ts
import { startRedis } from "../test/helpers/redis-server.ts";
import { measureSizing, sizingLines } from "./sizing.ts";

const server = await startRedis();
try {
  const figures = await measureSizing(server.url);
  for (const l of sizingLines(figures)) console.log(l);
  for (const c of figures.classes)
    console.log(`${c.segments} x ${c.person}: Redis ${c.redisBytes} B per key (mean, exact)`);
} finally {
  await server.close();
}
