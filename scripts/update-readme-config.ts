// Rewrites the configuration table in README.md from src/config.ts (npm run docs).
import { readFileSync, writeFileSync } from "node:fs";
import { configReferenceMarkdown } from "../src/config.ts";

const path = new URL("../README.md", import.meta.url);
const readme = readFileSync(path, "utf8");
const re = /(<!-- config:start -->\n)[\s\S]*?(<!-- config:end -->)/;
if (!re.test(readme)) throw new Error("README.md has no <!-- config:start --> ... <!-- config:end --> block");
writeFileSync(path, readme.replace(re, `$1${configReferenceMarkdown()}\n$2`));
