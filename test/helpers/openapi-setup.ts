// Every answer a test receives from a service instance (startService, or a process registered with serviceAt)
// through fetch is checked against the OpenAPI description; a violation fails the test that received it (or,
// received in a beforeAll, the file).
import { afterAll, afterEach } from "vitest";
import { checkAnswerLater, isServiceUrl, takeViolations } from "./openapi-check.ts";

const originalFetch = globalThis.fetch;

globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const res = await originalFetch(input, init);
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  if (isServiceUrl(url)) {
    const method = init?.method ?? (input instanceof Request ? input.method : "GET");
    // A copy of the body for the check: the test reads (or drops) its own as it likes.
    const copy = res.clone();
    checkAnswerLater(
      copy.arrayBuffer().then((body) => ({
        method,
        url,
        status: res.status,
        headers: new Map(res.headers),
        body: Buffer.from(body),
      })),
    );
  }
  return res;
};

async function failOnViolations(): Promise<void> {
  const found = await takeViolations();
  if (found.length > 0)
    throw new Error(`answers not as /openapi.json describes them:\n  ${found.join("\n  ")}`);
}

afterEach(failOnViolations);
afterAll(failOnViolations);
