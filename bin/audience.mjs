#!/usr/bin/env node
// The `audience` command. In a checkout it runs the TypeScript sources (tsx is a dev dependency, so `npm ci` brings
// it), even when a dist/ is there: a dist/ left by an earlier `npm start` may be older than the sources, and the
// command is not a hot path. The image holds no sources, so there it runs dist/.
import { existsSync } from "node:fs";

const src = new URL("../src/cli.ts", import.meta.url);
if (existsSync(src)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(src.href);
} else {
  await import(new URL("../dist/cli.js", import.meta.url).href);
}
