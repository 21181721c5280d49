/**
 * Logits processors and token selection, on one row of logits (a plain `Float32Array` of
 * vocabulary size). Each processor returns a new array and leaves its input alone; a removed token
 * gets −Infinity. Applied in Hugging Face's order: temperature → top-k → top-p.
 */
import type { Mulberry32 as SamplerRng } from "@lm4lv/core";

export interface SamplingOptions {
  /** 0 (default) = greedy argmax; otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Keep the k most likely tokens (0 or undefined = off). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability sums to ≥ p (1 or undefined = off). */
  topP?: number;
}

/** Index of the largest value (the first one on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** Probabilities in float64 (−Infinity → 0). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const p = new Float64Array(logits.length);
  let z = 0;
  for (let i = 0; i < logits.length; i++) {
    p[i] = logits[i] === -Infinity ? 0 : Math.exp(logits[i] - max);
    z += p[i];
  }
  for (let i = 0; i < p.length; i++) p[i] /= z;
  return p;
}

/** logits / t, t > 0. */
export function applyTemperature(logits: Float32Array, temperature: number): Float32Array {
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new RangeError(`temperature must be a positive number, got ${temperature}`);
  return logits.map((x) => x / temperature);
}

/** Keeps the k largest logits (and any tied with the k-th); the rest become −Infinity. */
export function topKFilter(logits: Float32Array, k: number): Float32Array {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`topK must be a non-negative integer, got ${k}`);
  if (k === 0 || k >= logits.length) return logits.slice();
  const kth = Float32Array.from(logits).sort().reverse()[k - 1];
  return logits.map((x) => (x < kth ? -Infinity : x));
}

/**
 * Nucleus filter: sort by probability (descending) and keep the shortest prefix whose cumulative
 * probability reaches p — so the most likely token always stays; the rest become −Infinity.
 */
export function topPFilter(logits: Float32Array, p: number): Float32Array {
  if (!(p > 0 && p <= 1)) throw new RangeError(`topP must be in (0, 1], got ${p}`);
  if (p === 1) return logits.slice();
  const probs = softmax(logits);
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  const keep = new Uint8Array(logits.length);
  let cumulative = 0;
  for (const i of order) {
    keep[i] = 1;
    cumulative += probs[i];
    if (cumulative >= p) break;
  }
  return logits.map((x, i) => (keep[i] ? x : -Infinity));
}

/** Draws an index with probability `probs[i]` (probs sum to 1). */
export function sampleIndex(probs: ArrayLike<number>, rng: SamplerRng): number {
  const u = rng.next();
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    cumulative += probs[i];
    last = i;
    if (u < cumulative) return i;
  }
  return last; // rounding left u ≥ the total: take the last possible token
}

/** Greedy when temperature is 0 (or unset); otherwise temperature → top-k → top-p → sample. */
export function selectToken(logits: Float32Array, options: SamplingOptions, rng: SamplerRng): number {
  const t = options.temperature ?? 0;
  if (t < 0) throw new RangeError(`temperature must be ≥ 0, got ${t}`);
  if (t === 0) return argmax(logits);
  let x = applyTemperature(logits, t);
  if (options.topK) x = topKFilter(x, options.topK);
  if (options.topP !== undefined && options.topP < 1) x = topPFilter(x, options.topP);
  return sampleIndex(softmax(x), rng);
}
