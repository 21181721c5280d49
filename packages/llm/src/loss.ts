/**
 * The LM's training loss: mean next-token cross-entropy over windows of a `TokenBatch`.
 * Notation: B batch, T window length (seq_len), V vocabulary, C hidden.
 */
import * as tf from "@tensorflow/tfjs";
import { Mulberry32 } from "@lm4lv/core";
import { normalPair } from "@lm4lv/data";
import type { LlamaForCausalLM } from "./model.js";
import type { TokenBatch } from "./corpus.js";

/**
 * Embedding lookup table[ids]: table (V, C), ids (B·T) → (B, T, C). Its gradient (a scatter-add)
 * runs on wasm through the UnsortedSegmentSum kernel that @lm4lv/core's initBackend registers.
 */
export function embedLookup(table: tf.Tensor2D, ids: Int32Array, B: number, T: number): tf.Tensor3D {
  const C = table.shape[1];
  return tf.tidy(() => tf.gather(table, tf.tensor1d(ids, "int32")).reshape([B, T, C]) as tf.Tensor3D); // (B, T, C)
}

/**
 * Per-position next-token cross-entropy (nats): logits (N, V), targets (N) → (N).
 * ce = logsumexp(logits) − logits[target].
 */
export function tokenCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const V = logits.shape[1];
    const lse = tf.logSumExp(logits, -1); // (N)
    const picked = tf.sum(tf.mul(logits, tf.oneHot(targets.toInt(), V)), -1); // (N)
    return tf.sub(lse, picked) as tf.Tensor1D;
  });
}

/**
 * Input-embedding noise, a regulariser of text pre-training (training only, like dropout): each
 * input embedding row x becomes x + α · rms(x) · z with z ~ N(0, I). A copy head then has to average
 * the noise away over many directions of the source token's embedding, which favours a copy path
 * of higher rank (what LM4LV's continuous visual tokens need; docs/results.md).
 */
export interface EmbeddingNoise {
  /** α: noise RMS relative to each embedding row's RMS (0: none). */
  alpha: number;
  /** Seed of the draws (the run's seed). */
  seed: number;
}

/**
 * Standard-normal draws z [B, T, C] of a batch: a function of the batch's token ids and the seed
 * only, so a resumed run (which replays the same batches) draws the same noise.
 */
export function embeddingNoiseDraws(batch: TokenBatch, hidden: number, seed: number): Float32Array {
  let h = 0x811c9dc5 ^ (seed | 0); // FNV-1a over the ids, started from the seed
  for (let i = 0; i < batch.ids.length; i++) h = Math.imul(h ^ batch.ids[i], 0x01000193);
  const rng = new Mulberry32(h >>> 0);
  const z = new Float32Array(batch.batchSize * batch.seqLen * hidden);
  for (let i = 0; i < z.length; i += 2) {
    const [a, b] = normalPair(() => rng.next());
    z[i] = a;
    if (i + 1 < z.length) z[i + 1] = b;
  }
  return z;
}

/** x + α · rms(x) · z over the last axis: x (B, T, C), z the draws (B·T·C) → (B, T, C). */
export function addEmbeddingNoise(x: tf.Tensor3D, z: Float32Array, alpha: number): tf.Tensor3D {
  return tf.tidy(() => {
    const rms = tf.sqrt(tf.mean(tf.square(x), -1, true)); // (B, T, 1)
    return tf.add(x, tf.mul(tf.mul(tf.tensor3d(z, x.shape), rms), alpha)) as tf.Tensor3D;
  });
}

/** Mean next-token cross-entropy of a batch under the model (a differentiable scalar); `noise`: see EmbeddingNoise. */
export function lmLoss(model: LlamaForCausalLM, batch: TokenBatch, noise?: EmbeddingNoise): { loss: tf.Scalar } {
  const { ids, batchSize: B, seqLen: T } = batch;
  const loss = tf.tidy(() => {
    const inputIds = new Int32Array(B * T);
    const targetIds = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      inputIds.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      targetIds.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    let inputsEmbeds = embedLookup(model.inputEmbeddings(), inputIds, B, T); // (B, T, C)
    if (noise && noise.alpha > 0) inputsEmbeds = addEmbeddingNoise(inputsEmbeds, embeddingNoiseDraws(batch, model.hiddenSize, noise.seed), noise.alpha);
    const targets = tf.tensor1d(targetIds, "int32"); // (B·T)
    const { logits, lastHiddenState } = model.forwardSync({ inputsEmbeds }); // (B, T, V)
    lastHiddenState.dispose();
    const ce = tokenCrossEntropy(logits.reshape([B * T, model.vocabSize]), targets); // (B·T)
    return tf.mean(ce) as tf.Scalar;
  });
  return { loss };
}
