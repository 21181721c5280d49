/**
 * Options of a training command: one zod object schema per command, whose inferred type is what
 * the command reads, parsed by core's parseCommandLine. Values come from the schema's defaults < a
 * YAML config file (--config) < command-line flags, merged and validated once; every problem names
 * where the value came from, the file and its key (`run.yaml: batch-size: expected a positive
 * integer, got "x"`) or the flag (`--batch-size: ...`). Unknown keys in the YAML and unknown flags
 * are errors.
 */
import { existsSync, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { parseCommandLine, usageText, UsageError, type CommandLine } from "@lm4lv/core";

/** A command's options; each field is described (`.describe(help)`) for --help. */
export type OptionsSchema = z.ZodObject<Record<string, z.ZodType>>;

export function usage(command: string, summary: string, schema: OptionsSchema): string {
  const head = `usage: pnpm train ${command} [--config file.yaml] [options]` + (summary ? `\n\n${summary}` : "");
  return usageText(head, schema, { title: "options (YAML keys in camelCase or kebab-case):" });
}

/** A --config file: YAML → its mapping of options. */
function readYamlConfig(file: string): unknown {
  if (!existsSync(file)) throw new UsageError(`${file}: config file not found`);
  try {
    return parseYaml(readFileSync(file, "utf8"));
  } catch (e) {
    throw new UsageError(`${file}: not valid YAML (${(e as Error).message})`);
  }
}

/** Parses argv (with an optional --config YAML) into the schema's typed options; with --help, nothing is validated. */
export function parseOptions<S extends OptionsSchema>(argv: string[], schema: S): CommandLine<S> {
  return parseCommandLine(argv, schema, { config: readYamlConfig });
}
