/**
 * lm4lv-data: write degraded LM4LV datasets.
 *
 *   lm4lv-data degrade <clean-dir> <out-dir> --task denoise [--size 64] [--seed 0] [--param sigma=25]
 *   lm4lv-data tasks
 *
 * `pnpm degrade <clean-dir> <out-dir> ...` runs `degrade`. Options are one zod schema
 * (DEGRADE_OPTIONS, the one place each default lives, parsed by core's parseCommandLine); every
 * problem names its flag.
 */
import { z } from "zod";
import { checkPositionals, nonNegativeInt, numeric, oneOf, parseCommandLine, positiveInt, usageText, UsageError } from "@lm4lv/core";
import { writeDegradedDataset } from "./dataset.js";
import { TASKS, TASK_NAMES, parseTaskParams } from "./tasks.js";

/** The options of `degrade`; `params` is `--param key=value ...` checked against the task's parameters. */
const DEGRADE_FIELDS = z.object({
  task: oneOf([TASK_NAMES[0], ...TASK_NAMES.slice(1)]).describe("the degradation task"),
  /** Square side the clean images are resized to (bicubic); omitted: their own size. */
  size: z.preprocess(numeric, positiveInt()).optional().describe("square side N the clean images are resized to (bicubic; default: their own size)"),
  seed: z.preprocess(numeric, nonNegativeInt()).default(0).describe("base seed of the per-image degradations"),
  param: z.array(z.string()).default([]).describe('key=value: overrides one of the task\'s parameters (repeatable; see "tasks")'),
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

const DEGRADE_PATHS = "<clean-dir> <out-dir>";

const USAGE = usageText(
  `usage:
  lm4lv-data degrade ${DEGRADE_PATHS} --task <name> [--size N] [--seed N] [--param key=value ...]
  lm4lv-data tasks

degrade   reads the images of <clean-dir> (sorted by name), resizes them to N×N (bicubic)
          if --size is given, and writes <out-dir>/lq/*.png, <out-dir>/hq/*.png and
          <out-dir>/data.json. Restoration tasks: LQ = degraded, HQ = clean.
          Spatial tasks: LQ = clean, HQ = transformed.
tasks     lists the task names with their default parameters.`,
  DEGRADE_OPTIONS,
  { title: "options of degrade:" },
);

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

export type DataCommand =
  | { command: "help"; exitCode: 0 | 1 }
  | { command: "tasks" }
  | { command: "degrade"; cleanDir: string; outDir: string; options: DegradeOptions };

/**
 * argv → the command with its paths and typed options. Unknown flags, bad values and missing
 * paths throw core's UsageError naming the flag.
 */
export function parseDataArgs(argv: string[]): DataCommand {
  // the command first (flags known, nothing validated), then the command's own options
  const { positionals, help } = parseCommandLine(argv, z.object({}), { allow: [DEGRADE_OPTIONS] });
  const [command, ...rest] = positionals;
  if (help || command === "help") return { command: "help", exitCode: 0 };
  if (command === undefined) return { command: "help", exitCode: 1 };
  if (command === "tasks") return { command: "tasks" };
  if (command !== "degrade") throw new UsageError(`unknown command "${command}" (use degrade or tasks)`);
  checkPositionals(rest, DEGRADE_PATHS);
  const { options } = parseCommandLine(argv, DEGRADE_OPTIONS);
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
    if (e instanceof UsageError) io.err(`\n${USAGE}\n`);
    return 1;
  }
}
