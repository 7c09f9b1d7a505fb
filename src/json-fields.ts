// Type-checked reads of JSON request fields; a wrong type becomes a 400 naming the field.
import { badField } from "./errors.ts";

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function optObject(parent: Json, key: string, field: string): Json | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw badField(field, "an object");
  return v;
}

export function optString(parent: Json, key: string, field: string): string | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw badField(field, "a string");
  return v;
}
