// Holds the service's answers to its OpenAPI description (src/http/openapi.ts, as /openapi.json serves it):
// each answer's status must be one its operation lists (or, for a path no route has or a method a route's
// path does not take, one the description's x-any-path lists), its content type one the status lists, its
// required headers present, and a JSON or msgpack body valid against the schema of that route and status.
// The test setup (openapi-setup.ts) checks every answer the tests receive from a service registered here.
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { unpack } from "msgpackr";
import { OPENAPI } from "../../src/http/openapi.ts";

interface MediaType {
  readonly schema?: object;
}
interface ResponseDoc {
  readonly description: string;
  readonly headers?: Record<string, { readonly required?: boolean }>;
  readonly content?: Record<string, MediaType>;
  readonly "x-schema-by-query"?: {
    readonly parameter: string;
    readonly default: string;
    readonly schemas: Record<string, object>;
  };
}
type Responses = Record<string, ResponseDoc>;
interface Description {
  readonly paths: Record<
    string,
    Record<
      string,
      {
        readonly responses: Responses;
        readonly requestBody?: { readonly content: Record<string, MediaType> };
      }
    >
  >;
  readonly components: { readonly schemas: Record<string, object> };
  readonly "x-any-path": { readonly responses: Responses };
}

/** One answer as a test received it. */
export interface Answer {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  /** Header names lower-case. */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

/** Checks answers against one description; `doc` is the service's own unless a test gives another. */
export class AnswerChecker {
  readonly #doc: Description;
  readonly #ajv: Ajv2020;
  readonly #validators = new Map<object, ValidateFunction>();
  /** Paths as patterns, static ones first: where two match, the static segment wins, as in the router. */
  readonly #paths: { readonly template: string; readonly re: RegExp; readonly statics: number }[];

  constructor(doc: object = OPENAPI) {
    this.#doc = doc as Description;
    // Strict: a keyword misspelt in the description is an error here, not a check that silently passes.
    this.#ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true });
    const defs = JSON.stringify(this.#doc.components.schemas).replaceAll(
      '"#/components/schemas/',
      '"openapi#/$defs/',
    );
    this.#ajv.addSchema({ $id: "openapi", $defs: JSON.parse(defs) });
    this.#paths = Object.keys(this.#doc.paths)
      .map((template) => {
        const parts = template.slice(1).split("/");
        const re = parts.map((p) => (p.startsWith("{") ? "[^/]+" : escapeRegExp(p))).join("/");
        return {
          template,
          re: new RegExp(`^/${re}$`),
          statics: parts.filter((p) => !p.startsWith("{")).length,
        };
      })
      .sort((a, b) => b.statics - a.statics);
  }

  /** Compiles every schema of the description, request bodies' included; throws at the first one that is not valid. */
  compileAll(): number {
    const schemas: object[] = Object.keys(this.#doc.components.schemas).map((name) => ({
      $ref: `#/components/schemas/${name}`,
    }));
    const responses = (r: Responses) => {
      for (const doc of Object.values(r)) {
        for (const media of Object.values(doc.content ?? {})) if (media.schema) schemas.push(media.schema);
        schemas.push(...Object.values(doc["x-schema-by-query"]?.schemas ?? {}));
      }
    };
    responses(this.#doc["x-any-path"].responses);
    for (const item of Object.values(this.#doc.paths))
      for (const op of Object.values(item)) {
        responses(op.responses);
        for (const media of Object.values(op.requestBody?.content ?? {}))
          if (media.schema) schemas.push(media.schema);
      }
    for (const schema of schemas) this.#validator(schema);
    return schemas.length;
  }

  /** What is wrong with the answer; [] when it is as described. */
  violations(a: Answer): string[] {
    const url = new URL(a.url);
    const method = a.method.toUpperCase();
    const where = `${method} ${url.pathname} -> ${a.status}`;
    const anyPath = this.#doc["x-any-path"].responses;
    const status = String(a.status);
    const matched = this.#paths.filter((p) => p.re.test(url.pathname));
    // x-any-path's 404 is for a path no route has, its 405 for a route's path and another method; the rest
    // (a refused framing, node:http's own answers) for any request.
    const anyRequest = (s: string) => (s === "404" || s === "405" ? undefined : anyPath[s]);
    let doc: ResponseDoc | undefined;
    let allow: string[] | null = null;
    if (matched.length === 0) {
      doc = status === "404" ? anyPath[status] : anyRequest(status);
      if (doc === undefined)
        return [
          `${where}: the path is no documented route's, and ${status} is not a status any path answers`,
        ];
    } else {
      const op = matched
        .map((p) => this.#doc.paths[p.template]?.[method.toLowerCase()])
        .find((o) => o !== undefined);
      if (op === undefined) {
        allow = [
          ...new Set(
            matched.flatMap((p) =>
              Object.keys(this.#doc.paths[p.template] ?? {}).map((m) => m.toUpperCase()),
            ),
          ),
        ];
        doc = status === "405" ? anyPath[status] : anyRequest(status);
        if (doc === undefined)
          return [`${where}: the route has no ${method}, and ${status} is not what it answers then`];
      } else {
        doc = op.responses[status] ?? anyRequest(status);
        if (doc === undefined) return [`${where}: status ${status} is not documented for this route`];
      }
    }
    const problems: string[] = [];
    for (const [name, h] of Object.entries(doc.headers ?? {}))
      if (h.required === true && !a.headers.has(name.toLowerCase()))
        problems.push(`header ${name} is missing`);
    if (allow !== null && a.status === 405) {
      const sent = (a.headers.get("allow") ?? "").split(",").map((m) => m.trim());
      if ([...sent].sort().join() !== [...allow].sort().join())
        problems.push(`Allow is '${a.headers.get("allow")}', the path takes ${allow.join(", ")}`);
    }
    problems.push(...this.#content(doc, a, url));
    return problems.map((p) => `${where}: ${p}`);
  }

  #content(doc: ResponseDoc, a: Answer, url: URL): string[] {
    const content = doc.content;
    if (content === undefined) return a.body.length === 0 ? [] : [`a body where none is documented`];
    const type = (a.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    const media = content[type];
    if (media === undefined)
      return [`content type '${type}' is not one of ${Object.keys(content).join(", ")}`];
    let value: unknown;
    if (type === "application/json") {
      try {
        value = JSON.parse(a.body.toString("utf8"));
      } catch (err) {
        return [`the body is not JSON: ${(err as Error).message}`];
      }
    } else if (type === "application/msgpack") {
      value = unpack(a.body);
    } else {
      // Text, HTML and images: their type is all a schema says of them.
      return [];
    }
    const byQuery = doc["x-schema-by-query"];
    const chosen =
      byQuery === undefined
        ? media.schema
        : byQuery.schemas[url.searchParams.get(byQuery.parameter) || byQuery.default];
    if (chosen === undefined) return [];
    const validate = this.#validator(chosen);
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => {
      const extra = e.keyword === "additionalProperties" ? ` '${String(e.params.additionalProperty)}'` : "";
      return `body${e.instancePath} ${e.message ?? "is invalid"}${extra}`;
    });
  }

  #validator(schema: object): ValidateFunction {
    let v = this.#validators.get(schema);
    if (v === undefined) {
      const text = JSON.stringify(schema).replaceAll('"#/components/schemas/', '"openapi#/$defs/');
      v = this.#ajv.compile(JSON.parse(text));
      this.#validators.set(schema, v);
    }
    return v;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Ports of the service instances the tests talk to (on the loopback address): their answers are checked. */
const servicePorts = new Set<string>();
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Registers a service instance at `base` (http://127.0.0.1:PORT); the function returned unregisters it. */
export function serviceAt(base: string): () => void {
  const port = new URL(base).port;
  servicePorts.add(port);
  return () => servicePorts.delete(port);
}

export function isServiceUrl(url: string): boolean {
  const u = new URL(url);
  return u.protocol === "http:" && LOOPBACK.has(u.hostname) && servicePorts.has(u.port);
}

let checker: AnswerChecker | undefined;
const found: string[] = [];
const pending = new Set<Promise<void>>();

function check(a: Answer): void {
  try {
    checker ??= new AnswerChecker();
    found.push(...checker.violations(a));
  } catch (err) {
    // A description the checker cannot use fails the test as surely as a wrong answer.
    found.push(`${a.method} ${a.url} -> ${a.status}: not checked: ${(err as Error).message}`);
  }
}

/** Checks an answer of a registered service against the service's description; violations are kept. */
export function checkServiceAnswer(a: Answer): void {
  if (isServiceUrl(a.url)) check(a);
}

/**
 * An answer of a registered service (the caller asked isServiceUrl) whose body is still arriving: checked once
 * it is whole. A body that never completes is not checked: the test reading it fails on its own.
 */
export function checkAnswerLater(answer: Promise<Answer>): void {
  const p: Promise<void> = answer.then(check, () => {}).finally(() => pending.delete(p));
  pending.add(p);
}

/** Waits for the answers still arriving, then hands over (and forgets) every violation found so far. */
export async function takeViolations(): Promise<string[]> {
  while (pending.size > 0) await Promise.all(pending);
  return found.splice(0);
}
