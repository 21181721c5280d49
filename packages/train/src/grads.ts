/**
 * Gradients for a list of named variables: a loss over one batch, averaged
 * over k micro-batches, and clipped by global norm.
 */
import * as tf from "@tensorflow/tfjs";
import type { NamedVariables } from "./optimizer.js";

/**
 * What a loss function returns: a scalar, or a scalar `loss` (the one that is
 * differentiated) with named parts for display, e.g. `{ loss, parts: { l1, lpips } }`.
 */
export type LossOutput = tf.Scalar | { loss: tf.Scalar; parts?: Record<string, tf.Scalar> };

export type LossFn<B> = (batch: B) => LossOutput;

export interface GradResult {
  /** Mean gradient over the micro-batches, by variable name (null: the loss does not depend on it). */
  grads: Record<string, tf.Tensor | null>;
  /** Mean loss over the micro-batches. */
  loss: number;
  /** Mean of each named part. */
  parts: Record<string, number>;
}

/**
 * Runs the loss on each micro-batch under tf.variableGrads with only `variables`
 * as the differentiated list, and returns the mean gradient (sum / k) and mean loss.
 * For a loss that is a mean over its batch, k micro-batches of size b give the
 * gradient of one batch of size k·b. The caller owns (and disposes) the returned tensors.
 */
export function accumulateGradients<B>(lossFn: LossFn<B>, variables: NamedVariables, microBatches: B[]): GradResult {
  if (microBatches.length === 0) throw new Error("accumulateGradients: no micro-batches");
  const names = Object.keys(variables);
  const list = names.map((n) => variables[n]);
  for (const [n, v] of Object.entries(variables)) {
    if (!v.trainable) throw new Error(`accumulateGradients: variable "${n}" is not trainable (tf.variable(x, true) is required)`);
  }
  const byTfName = new Map(names.map((n) => [variables[n].name, n]));
  if (byTfName.size !== names.length) throw new Error("accumulateGradients: the same tf.Variable is listed under two names");

  const sums: Record<string, tf.Tensor | null> = Object.fromEntries(names.map((n) => [n, null]));
  let lossSum = 0;
  const partSums: Record<string, number> = {};
  const k = microBatches.length;
  microBatches.forEach((batch, i) => {
    let kept: Record<string, tf.Scalar> = {};
    const { value, grads } = tf.variableGrads(() => {
      const out = lossFn(batch);
      const loss = out instanceof tf.Tensor ? out : out.loss;
      if (!(loss instanceof tf.Tensor) || loss.rank !== 0) throw new Error(`loss function: expected a scalar loss on micro-batch ${i}, got ${loss instanceof tf.Tensor ? `shape [${loss.shape}]` : typeof loss}`);
      kept = out instanceof tf.Tensor ? {} : Object.fromEntries(Object.entries(out.parts ?? {}).map(([n, t]) => [n, tf.keep(t)]));
      return loss;
    }, list);
    lossSum += value.dataSync()[0];
    for (const [n, t] of Object.entries(kept)) partSums[n] = (partSums[n] ?? 0) + t.dataSync()[0];
    // A part may be the loss tensor itself: dispose each tensor once.
    for (const t of new Set([value, ...Object.values(kept)])) t.dispose();
    for (const [tfName, g] of Object.entries(grads)) {
      const name = byTfName.get(tfName);
      if (name === undefined || !g) {
        g?.dispose();
        continue;
      }
      const prev = sums[name];
      if (prev) {
        sums[name] = tf.add(prev, g);
        prev.dispose();
        g.dispose();
      } else sums[name] = g;
    }
  });
  const out: Record<string, tf.Tensor | null> = {};
  for (const n of names) {
    const s = sums[n];
    if (s && k > 1) {
      out[n] = tf.div(s, k);
      s.dispose();
    } else out[n] = s;
  }
  return {
    grads: out,
    loss: lossSum / k,
    parts: Object.fromEntries(Object.entries(partSums).map(([n, v]) => [n, v / k])),
  };
}

/** Euclidean norm of all gradients taken together (computed in float64 from per-tensor sums of squares). */
export function globalNorm(grads: Record<string, tf.Tensor | null>): number {
  let sq = 0;
  for (const g of Object.values(grads)) {
    if (!g) continue;
    const s = tf.tidy(() => tf.sum(tf.square(g)));
    sq += s.dataSync()[0];
    s.dispose();
  }
  return Math.sqrt(sq);
}

/**
 * Scales gradients so their global norm is at most maxNorm (as torch.nn.utils.clip_grad_norm_:
 * factor maxNorm / (norm + 1e-6) when that is below 1). Returns the new gradients
 * (the inputs are disposed when replaced) and the norm before clipping.
 */
export function clipByGlobalNorm(grads: Record<string, tf.Tensor | null>, maxNorm = 1.0): { grads: Record<string, tf.Tensor | null>; norm: number } {
  if (!(maxNorm > 0)) throw new RangeError(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = globalNorm(grads);
  const coef = maxNorm / (norm + 1e-6);
  if (!(coef < 1) || !Number.isFinite(norm)) return { grads, norm };
  const out: Record<string, tf.Tensor | null> = {};
  for (const [n, g] of Object.entries(grads)) {
    if (!g) {
      out[n] = null;
      continue;
    }
    out[n] = tf.mul(g, coef);
    g.dispose();
  }
  return { grads: out, norm };
}
