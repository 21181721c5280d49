/**
 * Validation of configuration files and options with zod schemas.
 *
 * A schema's inferred output type is the config type (no separately declared interface). Every
 * problem is reported at once, each naming where it is and the field: for a file
 * `models/x/config.json: hidden_size: expected a positive integer, got "abc"`, for other sources
 * whatever `where` says (e.g. `--batch-size: expected a positive integer, got "x"`).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

export class ConfigError extends Error {}

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

// ---- field schemas with one message each ("expected a positive integer") -------------------------

/** Integer > 0. */
export const positiveInt = (msg = "expected a positive integer") => z.number(msg).int(msg).positive(msg);
/** Integer >= 0. */
export const nonNegativeInt = (msg = "expected an integer >= 0") => z.number(msg).int(msg).nonnegative(msg);
/** Finite number > 0. */
export const positiveNumber = (msg = "expected a positive number") => z.number(msg).positive(msg);
/** Finite number >= 0. */
export const nonNegativeNumber = (msg = "expected a number >= 0") => z.number(msg).nonnegative(msg);
/** One of a fixed list of strings; the message lists them. */
export const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, `expected one of ${values.join(", ")}`);

// ---- messages ------------------------------------------------------------------------------------

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

const EXPECTED: Record<string, string> = {
  number: "a number",
  int: "an integer",
  string: "a string",
  boolean: "true or false",
  object: "an object",
  array: "a list",
  null: "null",
  record: "an object",
  map: "an object",
};

/** A value as shown in messages: JSON, shortened. */
export function describeValue(v: unknown): string {
  let s: string;
  try {
    s = v === undefined ? "nothing" : JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** The message of an issue no schema customised: "expected an integer" rather than zod's defaults. */
function defaultMessage(iss: RawIssue): string {
  switch (iss.code) {
    case "invalid_type":
      return `expected ${EXPECTED[iss.expected] ?? iss.expected}`;
    case "too_small":
      if (iss.origin === "array") return iss.minimum === 1 ? "expected a non-empty list" : `expected a list of at least ${iss.minimum} items`;
      if (iss.origin === "string") return iss.minimum === 1 ? "expected a non-empty string" : `expected a string of at least ${iss.minimum} characters`;
      return `expected a value ${iss.inclusive ? ">=" : ">"} ${iss.minimum}`;
    case "too_big":
      if (iss.origin === "array") return `expected a list of at most ${iss.maximum} items`;
      return `expected a value ${iss.inclusive ? "<=" : "<"} ${iss.maximum}`;
    case "invalid_value":
      return iss.values.length === 1 ? `expected ${describeValue(iss.values[0])}` : `expected one of ${iss.values.map((v) => describeValue(v)).join(", ")}`;
    case "unrecognized_keys":
      return `unknown field${iss.keys.length > 1 ? "s" : ""} ${iss.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    case "invalid_union":
      return "does not match any accepted form";
    default:
      return "invalid value";
  }
}

/** "rope_scaling.factor", "conversations[0].from", "[3].image". */
export function fieldPath(path: readonly PropertyKey[]): string {
  let s = "";
  for (const k of path) s += typeof k === "number" ? `[${k}]` : s ? `.${String(k)}` : String(k);
  return s;
}

/** The message of one issue, with the offending value: `expected a positive integer, got "abc"`; a missing field says so. */
export function issueMessage(iss: Issue): string {
  if (iss.code === "invalid_type" && "input" in iss && iss.input === undefined) return `missing (${iss.message})`;
  if (iss.code === "unrecognized_keys" || !("input" in iss)) return iss.message;
  // a discriminated union names the discriminator's path: show its value, not the whole object
  const input = iss.code === "invalid_union" && "discriminator" in iss && iss.input && typeof iss.input === "object" ? (iss.input as Record<string, unknown>)[String(iss.discriminator)] : iss.input;
  return `${iss.message}, got ${describeValue(input)}`;
}

/** Where an issue is: a file name (its fields are named after it) or a function naming the place of a path. */
export type IssueSource = string | ((path: readonly PropertyKey[]) => string);

export interface FormatOptions {
  /** Issues listed before "... and N more" (default 10). */
  max?: number;
  /** How a path is named after a file's name (default fieldPath; e.g. "item 3: image[1]" for a list). */
  field?: (path: readonly PropertyKey[]) => string;
}

export interface ValidateOptions extends FormatOptions {
  /** Error class thrown (default ConfigError). */
  error?: new (message: string) => Error;
}

/** All issues as one line: `file: a: msg; b: msg` (or `where(a): msg; where(b): msg`). */
export function formatIssues(issues: readonly Issue[], source: IssueSource, opts: FormatOptions = {}): string {
  const max = opts.max ?? 10;
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const iss of issues) {
    const field = typeof source === "string" ? (opts.field ?? fieldPath)(iss.path) : source(iss.path);
    const line = field ? `${field}: ${issueMessage(iss)}` : issueMessage(iss);
    if (!seen.has(line)) {
      seen.add(line);
      lines.push(line);
    }
  }
  const shown = lines.slice(0, max).join("; ") + (lines.length > max ? `; ... and ${lines.length - max} more` : "");
  return typeof source === "string" ? `${source}: ${shown}` : shown;
}

/**
 * Parses `raw` with `schema`: returns the schema's typed output (defaults filled in; whether unknown
 * fields are kept is the schema's choice, e.g. `z.looseObject` for HF configs) or throws listing
 * every problem, each naming `source` and the field.
 */
export function validateConfig<S extends z.ZodType>(raw: unknown, schema: S, source: IssueSource, opts: ValidateOptions = {}): z.output<S> {
  const r = schema.safeParse(raw, { reportInput: true, error: (iss) => defaultMessage(iss) });
  if (r.success) return r.data;
  const ErrorClass = opts.error ?? ConfigError;
  throw new ErrorClass(formatIssues(r.error.issues, source, opts));
}

/** readJsonFile + validateConfig; errors name the file's path. */
export function readConfig<S extends z.ZodType>(pathOrDir: string, schema: S, fileName = "config.json", opts: ValidateOptions = {}): z.output<S> {
  const { path, json } = readJsonFile(pathOrDir, fileName);
  return validateConfig(json, schema, path, opts);
}
