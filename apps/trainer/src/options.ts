/**
 * Options of a training command: one zod object schema per command, whose inferred type is what
 * the command reads. Values come from the schema's defaults < a YAML config file (--config) <
 * command-line flags, merged and validated once; every problem names where the value came from,
 * the file and its key (`run.yaml: batch-size: expected a positive integer, got "x"`) or the flag
 * (`--batch-size: ...`). Unknown keys in the YAML and unknown flags are errors.
 */
import { readFileSync, existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { validateConfig } from "@lm4lv/core";

/** A command's options; each field is described (`.describe(help)`) for --help. */
export type OptionsSchema = z.ZodObject<Record<string, z.ZodType>>;

export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

type Kind = { kind: "boolean" | "number" | "integer" | "string" | "enum"; values?: readonly string[] };

/** What a field holds under its optional/default/preprocess wrappers (for the command line and --help). */
export function optionKind(schema: z.ZodType): Kind {
  let s = schema as z.ZodType;
  for (;;) {
    const def = s.def as { type: string; innerType?: z.ZodType; in?: z.ZodType; out?: z.ZodType };
    if (["optional", "default", "prefault", "nullable", "readonly", "nonoptional", "catch"].includes(def.type) && def.innerType) s = def.innerType;
    else if (def.type === "pipe" && def.in && def.out) s = def.in.def.type === "transform" ? def.out : def.in;
    else break;
  }
  if (s instanceof z.ZodBoolean) return { kind: "boolean" };
  if (s instanceof z.ZodNumber) return { kind: s.format === "safeint" ? "integer" : "number" };
  if (s instanceof z.ZodEnum) return { kind: "enum", values: s.options as string[] };
  return { kind: "string" };
}

/** The default of a field, if it has one. */
export function defaultOf(schema: z.ZodType): unknown {
  return schema instanceof z.ZodDefault ? schema.def.defaultValue : undefined;
}

export function usage(command: string, summary: string, schema: OptionsSchema): string {
  const lines = [`usage: pnpm train ${command} [--config file.yaml] [options]`, "", summary, "", "options (YAML keys in camelCase or kebab-case):"];
  for (const [name, field] of Object.entries(schema.shape)) {
    const k = optionKind(field);
    const arg = k.kind === "boolean" ? "" : ` <${k.kind === "enum" ? k.values!.join("|") : k.kind}>`;
    const def = defaultOf(field);
    const shown = def === undefined ? "" : ` (default ${JSON.stringify(def)})`;
    lines.push(`  --${kebab(name)}${arg}  `.padEnd(34) + `${field.description ?? ""}${shown}`);
  }
  return lines.join("\n");
}

/** A number written as text ("3e-4", " 8") → the number; anything else is left for the schema to reject. */
function numeric(v: unknown): unknown {
  if (typeof v !== "string" || v.trim() === "") return v;
  const n = Number(v);
  return Number.isFinite(n) ? n : v;
}

export interface ParsedOptions<S extends OptionsSchema> {
  options: z.output<S>;
  positionals: string[];
  help: boolean;
  /** Where each option given came from: `--flag` or `file.yaml: key`. */
  origin: Record<string, string>;
}

/** Parses argv (with an optional --config YAML) into the schema's typed options; with --help, nothing is validated. */
export function parseOptions<S extends OptionsSchema>(argv: string[], schema: S): ParsedOptions<S> {
  const fields = schema.shape as Record<string, z.ZodType>;
  const parseSpec: Record<string, { type: "string" | "boolean" }> = { config: { type: "string" }, help: { type: "boolean" } };
  const byKebab = new Map<string, string>();
  for (const [name, field] of Object.entries(fields)) {
    byKebab.set(kebab(name), name);
    const boolean = optionKind(field).kind === "boolean";
    parseSpec[kebab(name)] = { type: boolean ? "boolean" : "string" };
    if (boolean) parseSpec[`no-${kebab(name)}`] = { type: "boolean" };
  }
  const { values, positionals } = parseArgs({ args: argv, options: parseSpec, allowPositionals: true, strict: true });
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  const set = (name: string, v: unknown, from: string) => {
    const k = optionKind(fields[name]).kind;
    raw[name] = k === "number" || k === "integer" ? numeric(v) : v;
    origin[name] = from;
  };
  if (values.help === true) return { options: {} as z.output<S>, positionals, help: true, origin };
  if (typeof values.config === "string") {
    const file = values.config;
    if (!existsSync(file)) throw new Error(`${file}: config file not found`);
    let yaml: unknown;
    try {
      yaml = parseYaml(readFileSync(file, "utf8"));
    } catch (e) {
      throw new Error(`${file}: not valid YAML (${(e as Error).message})`);
    }
    if (yaml !== null && (typeof yaml !== "object" || Array.isArray(yaml))) throw new Error(`${file}: expected a mapping of options`);
    for (const [k, v] of Object.entries((yaml ?? {}) as Record<string, unknown>)) {
      const name = fields[k] ? k : byKebab.get(k);
      if (!name) throw new Error(`${file}: unknown option "${k}"`);
      set(name, v, `${file}: ${k}`);
    }
  }
  for (const [k, v] of Object.entries(values)) {
    if (k === "config" || k === "help" || v === undefined) continue;
    if (k.startsWith("no-") && byKebab.has(k.slice(3))) {
      set(byKebab.get(k.slice(3))!, false, `--${k}`);
      continue;
    }
    set(byKebab.get(k)!, v, `--${k}`);
  }
  // a problem with an option names where its value came from; one not given is named by its flag
  const where = (path: readonly PropertyKey[]) => {
    const name = String(path[0] ?? "");
    const rest = path.slice(1).map(String).join(".");
    return (origin[name] ?? `--${kebab(name)}`) + (rest ? `.${rest}` : "");
  };
  const options = validateConfig(raw, schema, where, { error: OptionsError });
  return { options, positionals, help: false, origin };
}

export class OptionsError extends Error {}
