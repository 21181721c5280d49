/**
 * Command-line options of the bench scripts: one zod object schema per command (camelCase fields,
 * `--kebab-case` flags, defaults and `.describe()` texts for --help), parsed by core's
 * parseCommandLine, so every problem names its flag; plus the bench's own list flag and runner.
 */
import { z } from "zod";

// Parsed by core's parseCommandLine (zod schema, kebab-case flags, --help from the schema).
export { numeric, parseCommandLine, usageText, UsageError } from "@lm4lv/core";

/** A comma-separated list flag (`--tasks denoise,deblur`) → its non-empty items. */
export const commaList = () =>
  z
    .string()
    .transform((s) => s.split(",").map((x) => x.trim()).filter((x) => x.length > 0))
    .pipe(z.array(z.string()).min(1, "expected a comma-separated list"));

export { isMain, runScript } from "@lm4lv/core";
