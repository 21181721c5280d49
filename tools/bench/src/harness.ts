/** Timing helpers for the benchmarks: warm-up, then the median of repeated runs. */
import * as tf from "@tensorflow/tfjs";

export interface Timing {
  medianMs: number;
  minMs: number;
  runs: number;
}

/** Runs `fn` (which must finish its work, e.g. by reading data back) until `minRuns` and `budgetMs` are met. */
export async function time(fn: () => unknown | Promise<unknown>, opts: { warmup?: number; minRuns?: number; maxRuns?: number; budgetMs?: number } = {}): Promise<Timing> {
  const { warmup = 1, minRuns = 3, maxRuns = 50, budgetMs = 3000 } = opts;
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || (times.length < maxRuns && performance.now() - start < budgetMs)) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)], minMs: times[0], runs: times.length };
}

/** Forces pending tfjs work to finish (tensors are read back). */
export function sync(t: tf.Tensor | tf.Tensor[]): void {
  for (const x of Array.isArray(t) ? t : [t]) x.dataSync();
}

export type Row = Record<string, string | number>;

export function printTable(title: string, rows: Row[]): void {
  if (!rows.length) return;
  const cols = Object.keys(rows[0]);
  const fmt = (v: string | number) => (typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2)) : v);
  console.log(`\n### ${title}\n`);
  console.log(`| ${cols.join(" | ")} |`);
  console.log(`| ${cols.map(() => "---").join(" | ")} |`);
  for (const r of rows) console.log(`| ${cols.map((c) => fmt(r[c] ?? "")).join(" | ")} |`);
}

export function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}
