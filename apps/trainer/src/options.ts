/**
 * Options of a training command: defaults < YAML config file (--config) < command-line flags.
 * Every option is declared once with its type; unknown keys in the YAML or flags are errors.
 */
import { readFileSync, existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";

export type OptionType = "string" | "number" | "integer" | "boolean";

export interface OptionSpec {
  type: OptionType;
  default?: string | number | boolean;
  help: string;
}

export type OptionSpecs = Record<string, OptionSpec>;
export type ParsedOptions = Record<string, string | number | boolean | undefined>;

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function usage(command: string, summary: string, specs: OptionSpecs): string {
  const lines = [`usage: pnpm train ${command} [--config file.yaml] [options]`, "", summary, "", "options (YAML keys in camelCase or kebab-case):"];
  for (const [name, s] of Object.entries(specs)) {
    const def = s.default === undefined ? "" : ` (default ${JSON.stringify(s.default)})`;
    lines.push(`  --${kebab(name)} <${s.type}>`.padEnd(34) + `${s.help}${def}`);
  }
  return lines.join("\n");
}

function coerce(name: string, raw: unknown, spec: OptionSpec, source: string): string | number | boolean {
  if (spec.type === "boolean") {
    if (typeof raw === "boolean") return raw;
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new Error(`${source}: option "${name}" should be a boolean, got ${JSON.stringify(raw)}`);
  }
  if (spec.type === "number" || spec.type === "integer") {
    const v = typeof raw === "number" ? raw : Number(raw);
    if (!Number.isFinite(v) || (spec.type === "integer" && !Number.isInteger(v))) {
      throw new Error(`${source}: option "${name}" should be ${spec.type === "integer" ? "an integer" : "a number"}, got ${JSON.stringify(raw)}`);
    }
    return v;
  }
  if (typeof raw !== "string") throw new Error(`${source}: option "${name}" should be a string, got ${JSON.stringify(raw)}`);
  return raw;
}

/** Parses argv: returns options, positionals, and whether --help was asked. */
export function parseOptions(argv: string[], specs: OptionSpecs): { options: ParsedOptions; positionals: string[]; help: boolean } {
  const parseSpec: Record<string, { type: "string" | "boolean" }> = { config: { type: "string" }, help: { type: "boolean" } };
  const byKebab = new Map<string, string>();
  for (const [name, s] of Object.entries(specs)) {
    byKebab.set(kebab(name), name);
    parseSpec[kebab(name)] = { type: s.type === "boolean" ? "boolean" : "string" };
    if (s.type === "boolean") parseSpec[`no-${kebab(name)}`] = { type: "boolean" };
  }
  const { values, positionals } = parseArgs({ args: argv, options: parseSpec, allowPositionals: true, strict: true });
  const options: ParsedOptions = {};
  for (const [name, s] of Object.entries(specs)) options[name] = s.default;
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
      const name = specs[k] ? k : byKebab.get(k);
      if (!name) throw new Error(`${file}: unknown option "${k}"`);
      options[name] = coerce(name, v, specs[name], file);
    }
  }
  for (const [k, v] of Object.entries(values)) {
    if (k === "config" || k === "help" || v === undefined) continue;
    if (k.startsWith("no-") && byKebab.has(k.slice(3))) {
      options[byKebab.get(k.slice(3))!] = false;
      continue;
    }
    const name = byKebab.get(k)!;
    options[name] = coerce(name, v, specs[name], "command line");
  }
  return { options, positionals, help: values.help === true };
}
