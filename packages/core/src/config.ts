/**
 * Hugging Face `config.json` reading with field validation.
 *
 * A schema lists each field with its type, whether it is required and its default;
 * a missing or mistyped field is reported with the file and the field name.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export class ConfigError extends Error {}

export type FieldType = "number" | "integer" | "boolean" | "string" | "object" | "array" | "number|null" | "object|null";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface FieldSpec<T = any> {
  type: FieldType;
  /** When absent the field is required. */
  default?: T;
  /** Extra check; return an error message or undefined. */
  check?: (value: T) => string | undefined;
}

export type ConfigSchema = Record<string, FieldSpec>;

/** Reads a JSON file (config.json or a folder holding one) as a plain object. */
export function readJsonFile(pathOrDir: string, fileName = "config.json"): { path: string; json: Record<string, unknown> } {
  const path = existsSync(pathOrDir) && statSync(pathOrDir).isDirectory() ? join(pathOrDir, fileName) : pathOrDir;
  if (!existsSync(path)) throw new ConfigError(`${path}: file not found`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) throw new ConfigError(`${path}: expected a JSON object`);
  return { path, json: json as Record<string, unknown> };
}

function typeOk(v: unknown, t: FieldType): boolean {
  switch (t) {
    case "number": return typeof v === "number" && Number.isFinite(v);
    case "integer": return typeof v === "number" && Number.isInteger(v);
    case "boolean": return typeof v === "boolean";
    case "string": return typeof v === "string";
    case "object": return !!v && typeof v === "object" && !Array.isArray(v);
    case "array": return Array.isArray(v);
    case "number|null": return v === null || (typeof v === "number" && Number.isFinite(v));
    case "object|null": return v === null || (!!v && typeof v === "object" && !Array.isArray(v));
  }
}

/**
 * Validates `raw` against `schema`: returns the raw object with defaults filled in
 * (unknown fields are kept, as HF does). `source` names the file in errors.
 */
export function validateConfig<T>(raw: Record<string, unknown>, schema: ConfigSchema, source: string): T {
  const out: Record<string, unknown> = { ...raw };
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(schema)) {
    let v = raw[name];
    if (v === undefined) {
      if (!("default" in spec)) { problems.push(`missing required field "${name}" (${spec.type})`); continue; }
      v = spec.default;
      out[name] = v;
      continue;
    }
    if (!typeOk(v, spec.type)) { problems.push(`field "${name}" should be ${spec.type}, got ${JSON.stringify(v)}`); continue; }
    const msg = spec.check?.(v);
    if (msg) problems.push(`field "${name}": ${msg}`);
  }
  if (problems.length) throw new ConfigError(`${source}: ${problems.join("; ")}`);
  return out as T;
}

/** readJsonFile + validateConfig. */
export function readConfig<T>(pathOrDir: string, schema: ConfigSchema, fileName = "config.json"): T {
  const { path, json } = readJsonFile(pathOrDir, fileName);
  return validateConfig<T>(json, schema, path);
}

export const positive = (v: number) => (v > 0 ? undefined : "must be > 0");
