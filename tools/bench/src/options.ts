/**
 * Command-line options of the bench scripts: one zod object schema per command (camelCase fields,
 * `--kebab-case` flags, defaults and `.describe()` texts for --help), parsed with node's parseArgs
 * and validated at once by core's validateConfig, so every problem names its flag.
 */
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { validateConfig } from "@lm4lv/core";

/** A problem with the command line: an unknown flag, a bad value, a missing argument. */
export class UsageError extends Error {}

/** A number written as text ("1e-4", " 8") → the number; anything else is left for the schema to reject. */
export const numeric = (v: unknown): unknown => (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v);

/** An integer flag: `--name N`, checked by `schema` (e.g. core's positiveInt()). */
export const intFlag = (schema: z.ZodNumber) => z.preprocess(numeric, schema);

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The field under optional/default wrappers. */
function inner(field: z.ZodType): z.ZodType {
  const def = field.def as { type: string; innerType?: z.ZodType };
  return (def.type === "optional" || def.type === "default") && def.innerType ? inner(def.innerType) : field;
}

/**
 * argv → the options of `schema` (camelCase fields, `--kebab-case` flags; a boolean field is a
 * flag without value, an array field a repeatable flag) and the positionals. Unknown flags and bad
 * values throw UsageError naming the flag; with --help nothing is validated. A leading "--" (what
 * `pnpm run <script> -- --flag` passes on) is dropped. The flags of the `allow` schemas are
 * accepted and left to them (several bench suites share one command line).
 */
export function parseCommandLine<S extends z.ZodObject>(
  argv: string[],
  schema: S,
  opts: { allow?: readonly z.ZodObject[] } = {},
): { options: z.output<S>; positionals: string[]; help: boolean } {
  const fields = Object.entries(schema.shape as Record<string, z.ZodType>);
  const flags: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = { help: { type: "boolean", short: "h" } };
  for (const [name, field] of [...(opts.allow ?? []).flatMap((s) => Object.entries(s.shape as Record<string, z.ZodType>)), ...fields]) {
    const f = inner(field);
    flags[kebab(name)] = f instanceof z.ZodBoolean ? { type: "boolean" } : { type: "string", multiple: f instanceof z.ZodArray };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv[0] === "--" ? argv.slice(1) : argv, options: flags, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { options: {} as z.output<S>, positionals, help: true };
  const raw = Object.fromEntries(fields.map(([name]) => [name, values[kebab(name)]]));
  const where = (path: readonly PropertyKey[]) => (path.length ? `--${kebab(String(path[0]))}` : "options");
  const options = validateConfig(raw, schema, where, { error: UsageError });
  return { options, positionals, help: false };
}

/** `usage` then one line per option: `--flag <kind>  description (default X)`, from the schema's `.describe()` texts and defaults (and -h, --help unless `help: false`). */
export function usageText(usage: string, schema: z.ZodObject, opts: { help?: boolean } = {}): string {
  const lines = [usage, "", "options:"];
  for (const [name, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
    const f = inner(field);
    const arg = f instanceof z.ZodBoolean ? "" : f instanceof z.ZodEnum ? ` <${(f.options as string[]).join("|")}>` : " <value>";
    const def = field instanceof z.ZodDefault ? ` (default ${JSON.stringify(field.def.defaultValue)})` : "";
    lines.push(`  --${kebab(name)}${arg}`.padEnd(30) + ` ${field.description ?? ""}${def}`);
  }
  if (opts.help ?? true) lines.push("  -h, --help".padEnd(30) + " show this help");
  return lines.join("\n");
}

/** A comma-separated list flag (`--tasks denoise,deblur`) → its non-empty items. */
export const commaList = () =>
  z
    .string()
    .transform((s) => s.split(",").map((x) => x.trim()).filter((x) => x.length > 0))
    .pipe(z.array(z.string()).min(1, "expected a comma-separated list"));

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
