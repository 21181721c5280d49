/**
 * The LM's training loss: mean next-token cross-entropy over windows of a `TokenBatch`.
 * Notation: B batch, T window length (seq_len), V vocabulary, C hidden.
 */
import * as tf from "@tensorflow/tfjs";
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

/** Mean next-token cross-entropy of a batch under the model (a differentiable scalar). */
export function lmLoss(model: LlamaForCausalLM, batch: TokenBatch): { loss: tf.Scalar } {
  const { ids, batchSize: B, seqLen: T } = batch;
  const loss = tf.tidy(() => {
    const inputIds = new Int32Array(B * T);
    const targetIds = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      inputIds.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      targetIds.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    const inputsEmbeds = embedLookup(model.inputEmbeddings(), inputIds, B, T); // (B, T, C)
    const targets = tf.tensor1d(targetIds, "int32"); // (B·T)
    const { logits, lastHiddenState } = model.forwardSync({ inputsEmbeds }); // (B, T, V)
    lastHiddenState.dispose();
    const ce = tokenCrossEntropy(logits.reshape([B * T, model.vocabSize]), targets); // (B·T)
    return tf.mean(ce) as tf.Scalar;
  });
  return { loss };
}
