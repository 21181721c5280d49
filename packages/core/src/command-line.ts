/**
 * Command lines parsed into zod schemas: one object schema per command (camelCase fields,
 * `--kebab-case` flags, defaults and `.describe()` texts for --help), read with node's parseArgs
 * (strict) and validated at once by validateConfig, so every problem names its flag:
 * `--batch-size: expected a positive integer, got "x"`.
 *
 * A boolean field is a flag without value (and `--no-<flag>` sets it false), an array field a
 * repeatable flag, a number field takes its value as text ("3e-4"). Values may also come from a
 * config file (`--config file`, read by the caller's reader) and from elsewhere (an environment
 * variable): defaults < those < flags, each problem naming where its value came from.
 */
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { validateConfig } from "./config.js";

/** A problem with the command line: an unknown flag, a bad value, a wrong number of arguments. */
export class UsageError extends Error {
  /** The command's usage text, when the parser was given one (`usage`). */
  usage?: string;
}

/** A number written as text ("1e-4", " 8") → the number; anything else is left for the schema to reject. */
export const numeric = (v: unknown): unknown => (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v);

/** camelCase field → its kebab-case flag name (`batchSize` → `batch-size`). */
export const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export type OptionKind = { kind: "boolean" | "number" | "integer" | "string" | "enum" | "list"; values?: readonly string[] };

/** What a field holds under its optional / default / preprocess wrappers (for the command line and --help). */
export function optionKind(schema: z.ZodType): OptionKind {
  let s = schema;
  for (;;) {
    const def = s.def as { type: string; innerType?: z.ZodType; in?: z.ZodType; out?: z.ZodType };
    if (["optional", "default", "prefault", "nullable", "readonly", "nonoptional", "catch"].includes(def.type) && def.innerType) s = def.innerType;
    else if (def.type === "pipe" && def.in && def.out) s = def.in.def.type === "transform" ? def.out : def.in;
    else break;
  }
  if (s instanceof z.ZodBoolean) return { kind: "boolean" };
  if (s instanceof z.ZodNumber) return { kind: s.format === "safeint" ? "integer" : "number" };
  if (s instanceof z.ZodEnum) return { kind: "enum", values: s.options as string[] };
  if (s instanceof z.ZodArray) return { kind: "list" };
  return { kind: "string" };
}

/** The default of a field, if it has one. */
export function defaultOf(schema: z.ZodType): unknown {
  return schema instanceof z.ZodDefault ? schema.def.defaultValue : undefined;
}

/** The fields of an object schema, also under `.transform()` / `.pipe()`. */
function fieldsOf(schema: z.ZodType): Record<string, z.ZodType> {
  if (schema instanceof z.ZodObject) return schema.shape as Record<string, z.ZodType>;
  const def = schema.def as { type: string; in?: z.ZodType; innerType?: z.ZodType };
  if (def.type === "pipe" && def.in) return fieldsOf(def.in);
  if (def.innerType) return fieldsOf(def.innerType);
  throw new Error("parseCommandLine: the options schema must be an object schema");
}

/**
 * Checks the number of positionals against `spec` as usage shows them: `<a>` required, `[b]`
 * optional, `...` after the last any number more; "" none.
 * `expected <gt> <pred>, got 1 argument(s)`; for "": `unexpected argument "x"`.
 */
export function checkPositionals(positionals: readonly string[], spec: string): void {
  const words = spec.split(/\s+/).filter(Boolean);
  if (words.length === 0) {
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    return;
  }
  const variadic = words[words.length - 1].endsWith("...");
  const min = words.filter((w) => w.startsWith("<")).length;
  const max = variadic ? Infinity : words.length;
  if (positionals.length < min || positionals.length > max) throw new UsageError(`expected ${spec}, got ${positionals.length} argument(s)`);
}

export interface CommandLineSpec {
  /** The positionals, as usage shows them ("<gt> <pred>", "[<image>]", "" for none): their number is checked. Omitted: any, the caller checks. */
  positionals?: string;
  /** The usage line(s) heading --help: the result's `usage` (and a UsageError's) is this and the options from the schema. */
  usage?: string;
  /** Flags of these schemas are accepted and left to them (several commands sharing one command line). */
  allow?: readonly z.ZodType[];
  /** Adds `--config <file>`: the reader turns the file into a mapping of options (camelCase or kebab-case keys), below the flags. */
  config?: (file: string) => unknown;
  /** Values from elsewhere, below the config file and the flags: field → its value and where it came from (e.g. an environment variable). */
  fallback?: Record<string, { value: unknown; from: string } | undefined>;
}

export interface CommandLine<S extends z.ZodType> {
  options: z.output<S>;
  positionals: string[];
  /** --help (or -h) was given: nothing was validated and `options` is empty. */
  help: boolean;
  /** Where each option given came from: `--flag`, `file.yaml: key` or a fallback's `from`. */
  origin: Record<string, string>;
  /** The usage text (`spec.usage` and the options), for --help. */
  usage: string;
}

/**
 * argv → the schema's typed options and the positionals. A leading "--" (what `pnpm run <script>
 * -- --flag` passes on) is dropped. Unknown flags, bad values and a wrong number of positionals
 * throw UsageError naming the flag; with --help nothing is validated.
 */
export function parseCommandLine<S extends z.ZodType>(argv: readonly string[], schema: S, spec: CommandLineSpec = {}): CommandLine<S> {
  const usage = usageText(spec.usage ?? "", schema);
  try {
    return parse(argv, schema, spec, usage);
  } catch (e) {
    const err = e instanceof UsageError ? e : new UsageError((e as Error).message);
    if (spec.usage !== undefined) err.usage = usage;
    throw err;
  }
}

function parse<S extends z.ZodType>(argv: readonly string[], schema: S, spec: CommandLineSpec, usage: string): CommandLine<S> {
  const fields = fieldsOf(schema);
  const flags: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = { help: { type: "boolean", short: "h" } };
  if (spec.config) flags.config = { type: "string" };
  for (const [name, field] of [...(spec.allow ?? []).flatMap((s) => Object.entries(fieldsOf(s))), ...Object.entries(fields)]) {
    const { kind } = optionKind(field);
    flags[kebab(name)] = kind === "boolean" ? { type: "boolean" } : { type: "string", multiple: kind === "list" };
    if (kind === "boolean") flags[`no-${kebab(name)}`] = { type: "boolean" };
  }
  const byFlag = new Map(Object.keys(fields).map((name) => [kebab(name), name]));
  const { values, positionals } = parseArgs({ args: argv[0] === "--" ? argv.slice(1) : [...argv], options: flags, allowPositionals: true, strict: true });
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  if (values.help) return { options: {} as z.output<S>, positionals, help: true, origin, usage };
  const set = (name: string, v: unknown, from: string) => {
    const { kind } = optionKind(fields[name]);
    raw[name] = kind === "number" || kind === "integer" ? numeric(v) : v;
    origin[name] = from;
  };
  for (const [name, given] of Object.entries(spec.fallback ?? {})) if (given && given.value !== undefined) set(name, given.value, given.from);
  if (spec.config && typeof values.config === "string") {
    const file = values.config;
    const read = spec.config(file);
    if (read !== null && read !== undefined && (typeof read !== "object" || Array.isArray(read))) throw new UsageError(`${file}: expected a mapping of options`);
    for (const [k, v] of Object.entries((read ?? {}) as Record<string, unknown>)) {
      const name = fields[k] ? k : byFlag.get(k);
      if (!name) throw new UsageError(`${file}: unknown option "${k}"`);
      set(name, v, `${file}: ${k}`);
    }
  }
  for (const [flag, v] of Object.entries(values)) {
    if (v === undefined) continue;
    if (byFlag.has(flag)) set(byFlag.get(flag)!, v, `--${flag}`);
    else if (flag.startsWith("no-") && byFlag.has(flag.slice(3)) && v === true) set(byFlag.get(flag.slice(3))!, false, `--${flag}`);
  }
  if (spec.positionals !== undefined) checkPositionals(positionals, spec.positionals);
  // a problem names where its value came from (an item of a list flag too); one not given is named by its flag
  const where = (path: readonly PropertyKey[]) => (path.length ? origin[String(path[0])] ?? `--${kebab(String(path[0]))}` : "options");
  const options = validateConfig(raw, schema, where, { error: UsageError });
  return { options, positionals, help: false, origin, usage };
}

export interface UsageTextOptions {
  /** The line above the options (default "options:"). */
  title?: string;
  /** Adds the `-h, --help` line (default true). */
  help?: boolean;
}

/**
 * `usage`, then one line per option: `--flag <kind>  description (default X)`, from the schema's
 * `.describe()` texts and defaults. A boolean whose default is true is shown as `--no-<flag>`, a
 * repeatable flag as `--flag <string>...`.
 */
export function usageText(usage: string, schema: z.ZodType, opts: UsageTextOptions = {}): string {
  const lines = usage ? [usage, ""] : [];
  lines.push(opts.title ?? "options:");
  const line = (flag: string, text: string) => {
    const [first, ...more] = text.split("\n");
    const head = `  ${flag}`.padEnd(31);
    lines.push(`${head.length > 31 ? `${head}  ` : head} ${first}`.trimEnd(), ...more.map((l) => `${" ".repeat(32)}${l}`));
  };
  for (const [name, field] of Object.entries(fieldsOf(schema))) {
    const k = optionKind(field);
    const def = defaultOf(field);
    const negated = k.kind === "boolean" && def === true;
    const arg = k.kind === "boolean" ? "" : k.kind === "list" ? " <string>..." : ` <${k.kind === "enum" ? k.values!.join("|") : k.kind}>`;
    const none = def === undefined || negated || (Array.isArray(def) && def.length === 0);
    const shown = none ? "" : ` (default ${JSON.stringify(def)})`;
    line(`--${negated ? "no-" : ""}${kebab(name)}${arg}`, `${field.description ?? ""}${shown}`);
  }
  if (opts.help ?? true) line("-h, --help", "show this help");
  return lines.join("\n");
}

/**
 * Whether node was started with the script `name` (dist/<name>.js, or src/<name>.ts): its entry
 * code runs then, not when a test imports it. By file name, because tsup moves the code of a
 * script that another script imports into a shared chunk (its import.meta.url is the chunk's).
 */
export function isMain(name: string): boolean {
  return process.argv[1] !== undefined && basename(process.argv[1]).replace(/\.(js|ts)$/, "") === name;
}

/** Runs a script's main; a failure exits 1 with its message (and the usage for a UsageError). */
export function runScript(main: () => Promise<void> | void, usage: string): void {
  Promise.resolve()
    .then(main)
    .catch((e) => {
      console.error(e instanceof Error ? e.message : e);
      if (e instanceof UsageError) console.error(`\n${usage}`);
      process.exit(1);
    });
}
