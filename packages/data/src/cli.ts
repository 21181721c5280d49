#!/usr/bin/env node
/**
 * lm4lv-data: write degraded LM4LV datasets.
 *
 *   lm4lv-data degrade <clean-dir> <out-dir> --task denoise [--size 64] [--seed 0] [--param sigma=25]
 *   lm4lv-data tasks
 */
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { writeDegradedDataset } from "./dataset.js";
import { TASKS, TASK_NAMES, isTaskName, parseTaskParams, type TaskParams } from "./tasks.js";

const USAGE = `usage:
  lm4lv-data degrade <clean-dir> <out-dir> --task <name> [--size N] [--seed N] [--param key=value ...]
  lm4lv-data tasks

degrade   reads the images of <clean-dir> (sorted by name), resizes them to N×N (bicubic)
          if --size is given, and writes <out-dir>/lq/*.png, <out-dir>/hq/*.png and
          <out-dir>/data.json. Restoration tasks: LQ = degraded, HQ = clean.
          Spatial tasks: LQ = clean, HQ = transformed.
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

class UsageError extends Error {}

function parseInteger(option: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${option}: expected an integer ≥ ${min}, got "${value}"`);
  }
  return n;
}

function parseParams(task: string, pairs: string[]): TaskParams {
  try {
    return parseTaskParams(task, pairs);
  } catch (e) {
    throw new UsageError(`--param ${(e as Error).message}`);
  }
}

/** Runs the CLI on `argv` (without node and the script); returns the exit code. */
export async function runCli(argv: string[], io: CliIO = defaultIO): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        task: { type: "string" },
        size: { type: "string" },
        seed: { type: "string" },
        param: { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
    });
    const [command, ...rest] = positionals;
    if (values.help || command === undefined || command === "help") {
      io.out(USAGE);
      return values.help || command === "help" ? 0 : 1;
    }
    if (command === "tasks") {
      for (const name of TASK_NAMES) {
        const t = TASKS[name];
        io.out(`${name.padEnd(11)} ${t.kind.padEnd(12)} ${t.description}  ${JSON.stringify(t.params)}`);
      }
      return 0;
    }
    if (command !== "degrade") throw new UsageError(`unknown command "${command}" (use degrade or tasks)`);
    if (rest.length !== 2) throw new UsageError(`degrade needs <clean-dir> and <out-dir>, got ${rest.length} path(s)`);
    const [cleanDir, outDir] = rest;
    const task = values.task;
    if (task === undefined) throw new UsageError(`--task is required (one of: ${TASK_NAMES.join(", ")})`);
    if (!isTaskName(task)) throw new UsageError(`--task: unknown task "${task}" (one of: ${TASK_NAMES.join(", ")})`);
    const size = parseInteger("size", values.size, 1);
    const seed = parseInteger("seed", values.seed, 0) ?? 0;
    const params = parseParams(task, values.param ?? []);

    const { count, jsonPath } = await writeDegradedDataset(cleanDir, outDir, task, {
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

function isMain(): boolean {
  if (!process.argv[1]) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
