// The HTTP ceiling: bare uWebSockets.js that reads the body, JSON.parses it and answers a fixed small JSON.

import uWS from "uWebSockets.js";
import { createRequire } from "node:module";

const REPLY = JSON.stringify({
  id: null,
  segments: [],
  capped: [],
  degraded: false,
  matched: [],
  withheld: [],
});
const BAD = JSON.stringify({ error: "bad json" });

const app = uWS.App();

app.post("/*", (res) => {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  const parts: Buffer[] = [];
  res.onData((chunk, isLast) => {
    // Copy: uWS reuses the chunk's memory once this callback returns.
    parts.push(Buffer.from(new Uint8Array(chunk)));
    if (!isLast) return;
    const body = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    let ok = true;
    try {
      JSON.parse(body.toString("utf8"));
    } catch {
      ok = false;
    }
    if (aborted) return;
    res.cork(() => {
      res
        .writeStatus(ok ? "200 OK" : "400 Bad Request")
        .writeHeader("content-type", "application/json")
        .end(ok ? REPLY : BAD);
    });
  });
});

app.get("/readyz", (res) => {
  res.cork(() => {
    res.writeHeader("content-type", "application/json").end('{"ready":true}');
  });
});

/** Whether the package swapped in its JS fallback (it does so silently when the addon cannot load). */
function fallbackLoaded(): boolean {
  const cache = createRequire(import.meta.url).cache;
  return Object.keys(cache).some((k) => /uWebSockets\.js[\\/]dist[\\/]index\.js$/.test(k));
}

app.listen("127.0.0.1", Number(process.env.PORT ?? 0), (socket) => {
  if (socket === false) {
    process.stderr.write("bare uWS server: cannot listen\n");
    process.exit(1);
  }
  process.stdout.write(
    `${JSON.stringify({ port: uWS.us_socket_local_port(socket), native: !fallbackLoaded() })}\n`,
  );
});

for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => process.exit(0));
