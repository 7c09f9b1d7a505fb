// The README's configuration table is generated from the one config definition; this keeps them in step.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONFIG_SPEC, configReferenceMarkdown, loadConfig } from "../../src/config.ts";

describe("configuration reference", () => {
  it("README.md carries the table generated from src/config.ts (run `npm run docs` after changing config)", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const block = /<!-- config:start -->\n([\s\S]*?)\n<!-- config:end -->/.exec(readme)?.[1];
    expect(block).toBe(configReferenceMarkdown());
  });

  it("documents every variable with the default the code really applies", () => {
    const table = configReferenceMarkdown();
    const defaults = loadConfig({}) as unknown as Record<string, unknown>;
    for (const [key, spec] of Object.entries(CONFIG_SPEC)) {
      expect(table).toContain(`| \`${spec.env}\` |`);
      const applied = defaults[key];
      if (spec.defaultText === undefined) expect(applied).toBeUndefined();
      else expect(String(applied)).toBe(spec.defaultText);
    }
  });
});
