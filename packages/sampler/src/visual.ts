/**
 * Visual-token generation (spec §5): the frozen LM writes MAE features.
 *
 *   h = last final-norm hidden state of the prompt (which ends with the text "<Img>")
 *   repeat numTokens times:  f_i = deAdapt(h)  → visual token i
 *                            h   = LM(adapt(f_i) as the next input embedding)
 *
 * Deterministic. With the KV cache each step feeds one embedding; without it every step re-runs the
 * whole prefix (the reference implementation's way) — both give the same features. The LM is
 * core's asynchronous `CausalLM` (tfjs or ONNX Runtime): every step awaits its forward.
 */
import * as tf from "@tensorflow/tfjs";
import type { CausalLM, KVCache } from "@lm4lv/core";
import { DEFAULT_NUM_VISUAL_TOKENS } from "@lm4lv/tokenizer";

/**
 * The two linear maps between the vision feature space and the LM's embedding space. Any object
 * with these methods works (the tfjs `LM4LVAdapters`, or an ONNX Runtime wrapper).
 */
export interface VisualAdapters {
  /** Features `[B, N, Dv]` → input embeddings `[B, N, Dl]`. */
  adapt(features: tf.Tensor3D): tf.Tensor3D;
  /** Final-norm hidden states `[B, N, Dl]` → features `[B, N, Dv]`. */
  deAdapt(hidden: tf.Tensor3D): tf.Tensor3D;
}

export interface GenerateVisualOptions {
  lm: CausalLM;
  adapters: VisualAdapters;
  /** `[1, T, Dl]` prompt embeddings, ending with the text "<Img>". */
  promptEmbeds: tf.Tensor3D;
  /** Visual tokens to write (1 + (image/patch)²; default 197). */
  numTokens?: number;
  /** Incremental decoding with the KV cache (default true). */
  useCache?: boolean;
}

export { DEFAULT_NUM_VISUAL_TOKENS };

/** `[B, T, D]` → its last position `[B, 1, D]`. */
export function lastPosition(x: tf.Tensor3D): tf.Tensor3D {
  const [B, T, D] = x.shape;
  return x.slice([0, T - 1, 0], [B, 1, D]);
}

/** One LM step's last position: hidden state `[1, 1, Dl]`, logits `[1, 1, vocab]`, and the cache. */
export interface LMStep {
  hidden: tf.Tensor3D;
  logits: tf.Tensor3D;
  cache?: KVCache;
}

/** Runs the LM and keeps only the last position's hidden state and logits (the rest is freed). */
export async function stepLM(lm: CausalLM, inputsEmbeds: tf.Tensor3D, cache: KVCache | undefined, useCache: boolean): Promise<LMStep> {
  const out = await lm.forward({ inputsEmbeds, cache, useCache });
  const hidden = lastPosition(out.lastHiddenState); // (1, 1, Dl)
  const logits = lastPosition(out.logits); // (1, 1, vocab)
  tf.dispose([out.lastHiddenState, out.logits]);
  if (useCache && !out.cache) throw new Error("the LM returned no cache although useCache was set");
  return { hidden, logits, cache: out.cache };
}

export function checkPrompt(lm: CausalLM, promptEmbeds: tf.Tensor3D, what: string): void {
  const s = promptEmbeds.shape;
  if (promptEmbeds.rank !== 3 || s[0] !== 1 || s[1] < 1 || s[2] !== lm.hiddenSize) {
    throw new Error(`${what}: promptEmbeds shape ${JSON.stringify(s)}, expected [1, T, ${lm.hiddenSize}] with T ≥ 1`);
  }
}

/**
 * The visual loop on an open cache, starting from the hidden state `h` `[1, 1, Dl]` of the last
 * position so far. Writes `n` features; with `feedLast` the last feature is fed back too and the
 * logits it produces are returned (text generation continues from them).
 * Consumes `h`. Returns features `[1, n, Dv]`.
 */
export async function visualLoopWithCache(
  lm: CausalLM,
  adapters: VisualAdapters,
  h: tf.Tensor3D,
  cache: KVCache,
  n: number,
  feedLast: boolean,
): Promise<{ features: tf.Tensor3D; logits?: tf.Tensor3D }> {
  const features: tf.Tensor3D[] = [];
  let logits: tf.Tensor3D | undefined;
  try {
    for (let i = 0; i < n; i++) {
      const f = tf.tidy(() => adapters.deAdapt(h)); // (1, 1, Dv)  visual token i
      features.push(f);
      if (i === n - 1 && !feedLast) break;
      const e = tf.tidy(() => adapters.adapt(f)); // (1, 1, Dl)
      let step: LMStep;
      try {
        step = await stepLM(lm, e, cache, true);
      } finally {
        e.dispose();
      }
      h.dispose();
      h = step.hidden;
      logits?.dispose();
      logits = step.logits;
    }
    const out = tf.concat(features, 1) as tf.Tensor3D; // (1, n, Dv)
    if (feedLast) return { features: out, logits };
    logits?.dispose();
    return { features: out };
  } finally {
    h.dispose();
    tf.dispose(features);
  }
}

/** Writes `numTokens` visual features `[1, numTokens, Dv]` after the prompt. */
export async function generateVisualTokens(options: GenerateVisualOptions): Promise<tf.Tensor3D> {
  const { lm, adapters, promptEmbeds } = options;
  const n = options.numTokens ?? DEFAULT_NUM_VISUAL_TOKENS;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`numTokens must be a positive integer, got ${n}`);
  checkPrompt(lm, promptEmbeds, "generateVisualTokens");

  if (options.useCache ?? true) {
    const first = await stepLM(lm, promptEmbeds, undefined, true); // prompt once
    first.logits.dispose();
    try {
      return (await visualLoopWithCache(lm, adapters, first.hidden, first.cache!, n, false)).features;
    } finally {
      first.cache!.dispose();
    }
  }

  // No cache: the whole prefix, prompt + adapt(f_0 .. f_{i−1}), is recomputed at every step.
  let sequence = promptEmbeds; // (1, T + i, Dl)
  const features: tf.Tensor3D[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const step = await stepLM(lm, sequence, undefined, false);
      step.logits.dispose();
      const f = tf.tidy(() => adapters.deAdapt(step.hidden)); // (1, 1, Dv)
      step.hidden.dispose();
      features.push(f);
      if (i === n - 1) break;
      const next = tf.tidy(() => tf.concat([sequence, adapters.adapt(f)], 1) as tf.Tensor3D);
      if (sequence !== promptEmbeds) sequence.dispose();
      sequence = next;
    }
    return tf.concat(features, 1) as tf.Tensor3D; // (1, n, Dv)
  } finally {
    if (sequence !== promptEmbeds) sequence.dispose();
    tf.dispose(features);
  }
}
