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
    // With no Redis and demo data (the empty environment) TCF_VENDOR_ID takes the demo vendor: the code's
    // own default is seen without the demo.
    const defaults: Record<string, unknown> = {
      ...(loadConfig({}) as unknown as Record<string, unknown>),
      tcfVendorId: loadConfig({ SEED_DEMO_DATA: "false" }).tcfVendorId,
      // Resolved from the deployment when unset (config.test.ts checks it).
      impressionReplicas: undefined,
    };
    for (const [key, spec] of Object.entries(CONFIG_SPEC)) {
      expect(table).toContain(`| \`${spec.env}\` |`);
      const applied = defaults[key];
      if (spec.defaultText === undefined) expect(applied).toBeUndefined();
      else if (applied instanceof Map) expect(applied.size === 0 ? "" : "set").toBe(spec.defaultText);
      else if (applied?.constructor === Object) {
        // A per-name table (GPP_STATES) is written as name=value pairs.
        const pairs = Object.entries(applied as object).map(([k, v]) => `${k}=${String(v)}`);
        expect(pairs.join(",")).toBe(spec.defaultText);
      } else expect(String(applied)).toBe(spec.defaultText);
    }
  });
});
