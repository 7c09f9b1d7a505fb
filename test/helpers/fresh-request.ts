// One HTTP request on a new connection of its own (no keep-alive agent), so that with WORKERS the kernel may
// hand each request to any worker thread.
import { request } from "node:http";
import { checkServiceAnswer } from "./openapi-check.ts";

export function fresh(
  port: number,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
  // biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field
): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method, path, agent: false, headers: { connection: "close", ...headers } },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (c: Buffer) => {
          parts.push(c);
        });
        res.on("end", () => {
          const body = Buffer.concat(parts);
          const status = res.statusCode ?? 0;
          const headers = new Map<string, string>();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers.set(k, v);
          checkServiceAnswer({ method, url: `http://127.0.0.1:${port}${path}`, status, headers, body });
          const text = body.toString();
          resolve({ status, json: text === "" ? null : JSON.parse(text) });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
