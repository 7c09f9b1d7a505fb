#!/usr/bin/env node
// The `audience` command. In a checkout it runs the TypeScript sources; in a built image, dist/.
import { existsSync } from "node:fs";

const src = new URL("../src/cli.ts", import.meta.url);
if (existsSync(src)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(src.href);
} else {
  await import(new URL("../dist/cli.js", import.meta.url).href);
}
