/**
 * Command-line options of the bench scripts: one zod object schema per command (camelCase fields,
 * `--kebab-case` flags, defaults and `.describe()` texts for --help), parsed by core's
 * parseCommandLine, so every problem names its flag; plus the bench's own list flag and runner.
 */
import { basename } from "node:path";
import { z } from "zod";
import { UsageError } from "@lm4lv/core";

// Parsed by core's parseCommandLine (zod schema, kebab-case flags, --help from the schema).
export { numeric, parseCommandLine, usageText, UsageError } from "@lm4lv/core";

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
