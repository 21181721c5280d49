/**
 * lm4lv-data: write degraded LM4LV datasets.
 *
 *   lm4lv-data degrade <clean-dir> <out-dir> --task denoise [--size 64] [--seed 0] [--param sigma=25]
 *   lm4lv-data tasks
 *
 * `pnpm degrade <clean-dir> <out-dir> ...` runs `degrade`. Options are one zod schema
 * (DEGRADE_OPTIONS, the one place each default lives); every problem names its flag.
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { nonNegativeInt, oneOf, positiveInt, validateConfig } from "@lm4lv/core";
import { writeDegradedDataset } from "./dataset.js";
import { TASKS, TASK_NAMES, parseTaskParams } from "./tasks.js";

/** A number written as text → the number; anything else is left for the schema to reject. */
const numeric = (v: unknown) => (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v);

/** The options of `degrade`; `params` is `--param key=value ...` checked against the task's parameters. */
const DEGRADE_FIELDS = z.object({
  task: oneOf([TASK_NAMES[0], ...TASK_NAMES.slice(1)]),
  /** Square side the clean images are resized to (bicubic); omitted: their own size. */
  size: z.preprocess(numeric, positiveInt()).optional(),
  seed: z.preprocess(numeric, nonNegativeInt()).default(0),
  param: z.array(z.string()).default([]),
});

export const DEGRADE_OPTIONS = DEGRADE_FIELDS.transform(({ param, ...o }, ctx) => {
  try {
    return { ...o, params: parseTaskParams(o.task, param) };
  } catch (e) {
    ctx.addIssue({ code: "custom", path: ["param"], message: (e as Error).message });
    return z.NEVER;
  }
});

export type DegradeOptions = z.output<typeof DEGRADE_OPTIONS>;

const FLAGS = {
  task: { type: "string" },
  size: { type: "string" },
  seed: { type: "string" },
  param: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

const USAGE = `usage:
  lm4lv-data degrade <clean-dir> <out-dir> --task <name> [--size N] [--seed N] [--param key=value ...]
  lm4lv-data tasks

degrade   reads the images of <clean-dir> (sorted by name), resizes them to N×N (bicubic)
          if --size is given, and writes <out-dir>/lq/*.png, <out-dir>/hq/*.png and
          <out-dir>/data.json. Restoration tasks: LQ = degraded, HQ = clean.
          Spatial tasks: LQ = clean, HQ = transformed.
          --task     one of ${TASK_NAMES.join(", ")}
          --seed     base seed of the per-image degradations (default ${DEGRADE_FIELDS.shape.seed.def.defaultValue})
          --param    overrides one of the task's parameters (repeatable; see "tasks")
tasks     lists the task names with their default parameters.`;

export interface CliIO {
  out: (line: string) => void;
  err: (text: string) => void;
  /** Whether stderr is a terminal (progress redraws one line). */
  tty: boolean;
}

const defaultIO: CliIO = {
  out: (line) => process.stdout.write(line + "\n"),
  err: (text) => process.stderr.write(text),
  tty: Boolean(process.stderr.isTTY),
};

export class UsageError extends Error {}

export type DataCommand =
  | { command: "help"; exitCode: 0 | 1 }
  | { command: "tasks" }
  | { command: "degrade"; cleanDir: string; outDir: string; options: DegradeOptions };

/**
 * argv → the command with its paths and typed options. Unknown flags, bad values and missing
 * paths throw (UsageError, or node's parseArgs error for an unknown flag) naming the flag.
 */
export function parseDataArgs(argv: string[]): DataCommand {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: FLAGS });
  const [command, ...rest] = positionals;
  if (values.help || command === "help") return { command: "help", exitCode: 0 };
  if (command === undefined) return { command: "help", exitCode: 1 };
  if (command === "tasks") return { command: "tasks" };
  if (command !== "degrade") throw new UsageError(`unknown command "${command}" (use degrade or tasks)`);
  if (rest.length !== 2) throw new UsageError(`degrade needs <clean-dir> and <out-dir>, got ${rest.length} path(s)`);
  const { help: _help, ...raw } = values;
  const options = validateConfig(raw, DEGRADE_OPTIONS, (path) => `--${String(path[0])}`, { error: UsageError });
  return { command: "degrade", cleanDir: rest[0], outDir: rest[1], options };
}

/** Runs the CLI on `argv` (without node and the script); returns the exit code. */
export async function runCli(argv: string[], io: CliIO = defaultIO): Promise<number> {
  try {
    const cmd = parseDataArgs(argv);
    if (cmd.command === "help") {
      io.out(USAGE);
      return cmd.exitCode;
    }
    if (cmd.command === "tasks") {
      for (const name of TASK_NAMES) {
        const t = TASKS[name];
        io.out(`${name.padEnd(11)} ${t.kind.padEnd(12)} ${t.description}  ${JSON.stringify(t.params)}`);
      }
      return 0;
    }
    const { task, size, seed, params } = cmd.options;
    const { count, jsonPath } = await writeDegradedDataset(cmd.cleanDir, cmd.outDir, task, {
      size,
      seed,
      params,
      onProgress: (done, total, name) => {
        if (io.tty) io.err(`\r[${done}/${total}] ${name}\x1b[K${done === total ? "\n" : ""}`);
        else io.err(`[${done}/${total}] ${name}\n`);
      },
    });
    io.out(`wrote ${count} pairs (${task}, seed ${seed}${size ? `, ${size}×${size}` : ""}) → ${jsonPath}`);
    return 0;
  } catch (e) {
    const msg = (e as Error).message;
    io.err(`lm4lv-data: ${msg}\n`);
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) io.err(`\n${USAGE}\n`);
    return 1;
  }
}
