// One HTTP request on a new connection of its own (no keep-alive agent), so that with WORKERS the kernel may
// hand each request to any worker thread.
import { request } from "node:http";

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
        let text = "";
        res.on("data", (c: Buffer) => {
          text += c.toString();
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, json: text === "" ? null : JSON.parse(text) }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
