import { readdirSync, readFileSync } from "node:fs";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";

/** The OpenRTB 2.6 JSON Schemas vendored from IAB Tech Lab (see SOURCE.md in that folder). */
export const OPENRTB_SCHEMA_DIR = new URL("../fixtures/openrtb-2.6-jsonschema/", import.meta.url);
export const BID_REQUEST_SCHEMA_ID = "https://iabtechlab.com/openrtb/2.6/BidRequest.json";
const EXPECTED_SCHEMA_COUNT = 38;

export type BidRequestValidator = (value: unknown) => { valid: boolean; errors: string };

let cached: ValidateFunction | undefined;

function compileBidRequestSchema(): ValidateFunction {
  const ajv = new Ajv2020({ allErrors: true });
  const files = readdirSync(OPENRTB_SCHEMA_DIR).filter((name) => name.endsWith(".json"));
  if (files.length !== EXPECTED_SCHEMA_COUNT) {
    throw new Error(`expected ${EXPECTED_SCHEMA_COUNT} OpenRTB schemas, found ${files.length}`);
  }
  for (const name of files) {
    ajv.addSchema(JSON.parse(readFileSync(new URL(name, OPENRTB_SCHEMA_DIR), "utf8")));
  }
  const validate = ajv.getSchema(BID_REQUEST_SCHEMA_ID);
  if (!validate) throw new Error(`schema ${BID_REQUEST_SCHEMA_ID} not found`);
  return validate;
}

/**
 * Validator for OpenRTB 2.6 BidRequest objects (Draft 2020-12 schemas, objects are open so
 * 2.5 requests with `ext` fields pass too). `errors` is empty when valid, else one line per problem.
 */
export function loadBidRequestValidator(): BidRequestValidator {
  cached ??= compileBidRequestSchema();
  const validate = cached;
  return (value) => {
    const valid = validate(value) === true;
    const errors = valid
      ? ""
      : (validate.errors ?? [])
          .map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`)
          .join("\n");
    return { valid, errors };
  };
}
