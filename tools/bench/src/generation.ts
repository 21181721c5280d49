/**
 * `pnpm infer`'s generation speed on the embedded default (ONNX Runtime engine), optionally side by
 * side with other checkouts of the repository:
 *
 *   pnpm bench generation [--against=<checkout>]... [--reps=N] [--runs=N] [--threads=N]
 *
 * Each measurement is a child process (generation-child.ts) that loads every package from one
 * checkout; with `--against` the checkouts alternate (A B A B ...) so that a change of machine load
 * hits them alike. Reported per checkout: the median over the repetitions of ms per restored image
 * (`restore`: encode, prompt, folded visual loop, decode) and ms per visual token of the folded
 * loop and of the sampler over ORT's causal LM: wall-clock (median and best run) and CPU time of
 * the process (the best run and CPU time are less sensitive to other jobs on the machine), with
 * the load average while measuring.
 * A checkout to compare with: `git worktree add /tmp/before <rev> && cd /tmp/before &&
 * pnpm install --offline && pnpm build`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { positiveInt } from "@lm4lv/core";
import { RESULT_TAG, type GenerationChildOptions, type GenerationChildResult } from "./generation-child.js";
import { printTable, type Row } from "./harness.js";
import { parseCommandLine } from "./options.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CHILD = join(dirname(fileURLToPath(import.meta.url)), "generation-child.js");

interface Checkout {
  root: string;
  label: string;
}

/** `<short commit>` (+ "with changes" when the working tree differs from it). */
function describe(root: string): string {
  try {
    const rev = execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["-C", root, "status", "--porcelain", "--untracked-files=no"], { encoding: "utf8" }).trim() !== "";
    return dirty ? `${rev} + changes` : rev;
  } catch {
    return "?";
  }
}

/** The options of `pnpm bench generation` (and of the lm4lv suite's generation table): the one place each default lives. */
export const GENERATION_OPTIONS = z.object({
  against: z.array(z.string()).default([]).describe("another checkout to time side by side (repeatable)"),
  reps: positiveInt().optional().describe("child processes per checkout (default 5 with --against, else 3)"),
  runs: positiveInt().default(5).describe("restorations timed in each child"),
  threads: positiveInt().optional().describe("ORT intra-op threads (default: ORT's)"),
});

export type GenerationOptions = z.output<typeof GENERATION_OPTIONS>;

function runChild(c: Checkout, o: GenerationChildOptions): GenerationChildResult {
  const r = spawnSync(process.execPath, [CHILD, c.root, JSON.stringify(o)], { encoding: "utf8", timeout: 30 * 60_000 });
  const line = r.stdout?.split("\n").find((l) => l.startsWith(RESULT_TAG));
  if (r.status !== 0 || !line) throw new Error(`generation bench in ${c.root} failed (exit ${r.status}): ${(r.stderr || String(r.error ?? "")).trim().split("\n").slice(-5).join("\n")}`);
  return JSON.parse(line.slice(RESULT_TAG.length)) as GenerationChildResult;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** argv → typed options; a bad flag throws UsageError naming it. `allow`: flags of other suites named in the same run. */
export function parseGenerationArgs(argv: string[], allow: readonly z.ZodObject[] = []): GenerationOptions {
  return parseCommandLine(argv, GENERATION_OPTIONS, { allow }).options;
}

export async function benchGeneration(options: GenerationOptions = GENERATION_OPTIONS.parse({})): Promise<Row[]> {
  const against = options.against.map((d) => resolve(d));
  const { runs, threads } = options;
  const reps = options.reps ?? (against.length ? 5 : 3);
  const checkouts: Checkout[] = [ROOT, ...against].map((root) => ({ root, label: `${root === ROOT ? "this checkout" : root} (${describe(root)})` }));
  for (const c of checkouts) {
    if (!existsSync(join(c.root, "packages", "pipeline", "dist", "index.js"))) throw new Error(`${c.root}: not built (pnpm install --offline && pnpm build there)`);
  }
  const results = new Map<Checkout, GenerationChildResult[]>(checkouts.map((c) => [c, []]));
  const loads: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const c of checkouts) {
      const cacheDir = join(tmpdir(), "lm4lv-bench-generation", createHash("sha1").update(c.root).digest("hex").slice(0, 12));
      loads.push(loadavg()[0]);
      const r = runChild(c, { cacheDir, threads, runs });
      results.get(c)!.push(r);
      const f = (m: { wall: number; best: number; cpu: number }, d: number) => `${m.wall.toFixed(d)} (best ${m.best.toFixed(d)}, cpu ${m.cpu.toFixed(d)})`;
      console.log(`  rep ${rep + 1}/${reps} ${c.label}: ms/image ${f(r.perImage, 1)}, folded ms/token ${f(r.foldedPerToken, 3)}, sampler ms/token ${f(r.samplerPerToken, 3)}; load ${loadavg()[0].toFixed(2)}`);
    }
  }
  loads.push(loadavg()[0]);
  // one row per measure, one column per checkout (+ its ratio to this checkout)
  const measures: [string, (r: GenerationChildResult) => number][] = [
    ["ms/image (restore), median", (r) => r.perImage.wall],
    ["ms/image (restore), best run", (r) => r.perImage.best],
    ["CPU ms/image", (r) => r.perImage.cpu],
    ["folded loop ms/visual token, median", (r) => r.foldedPerToken.wall],
    ["folded loop ms/visual token, best run", (r) => r.foldedPerToken.best],
    ["folded loop CPU ms/visual token", (r) => r.foldedPerToken.cpu],
    ["sampler ms/visual token, median", (r) => r.samplerPerToken.wall],
    ["sampler ms/visual token, best run", (r) => r.samplerPerToken.best],
    ["sampler CPU ms/visual token", (r) => r.samplerPerToken.cpu],
    ["load ms (export cached)", (r) => r.loadMs],
  ];
  const rows: Row[] = measures.map(([what, f]) => {
    const row: Row = { measure: what };
    const base = median(results.get(checkouts[0])!.map(f));
    for (const c of checkouts) {
      const v = median(results.get(c)!.map(f));
      row[c.label] = v;
      if (c !== checkouts[0]) row[`this / ${c.root}`] = base / v;
    }
    return row;
  });
  const first = results.get(checkouts[0])![0];
  printTable(
    `pnpm infer generation on the embedded default (denoise, ${first.visualTokens} visual tokens after a ${first.promptTokens}-token prompt, ONNX Runtime, ${threads ?? "default"} threads): median over ${reps} alternating child processes of each one's median (or best) of ${runs} runs; 1-min load average ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}`,
    rows,
  );
  return rows;
}
