/**
 * The LM4LV training loss (spec §4): total = CE + MSE, weights 1 and 1.
 *
 *   CE   text tokens of the response: the logits at position t predict labels[t + 1]
 *        (labels hold −100 where there is no loss); mean over every labelled position of the batch.
 *   MSE  for each vision target (position t, image k, token i): de_adapter(hidden[t]) regresses
 *        the RAW MAE feature targets[k][i] (not adapted); mean over every element.
 *
 * A term with nothing to average (no labelled token, no vision target) is 0, not NaN.
 */
import * as tf from "@tensorflow/tfjs";
import type { SyncCausalLM } from "@lm4lv/core";
import type { LM4LVAdapters } from "./adapters.js";
import { assembleBatchInputsEmbeds, imageFeatureRows } from "./assemble.js";
import type { ImageFeatures, SequenceLayout } from "./assemble.js";

import { IGNORE_INDEX, type VisionTarget } from "@lm4lv/tokenizer";

export { IGNORE_INDEX };
export type { VisionTarget };

/** Per-sample supervision (a `BuiltSequence` from `@lm4lv/tokenizer` fits). */
export interface LossSample {
  /** Per position: the id to predict there, or −100. The shift by one is done here. */
  labels: readonly number[];
  visionTargets: readonly VisionTarget[];
}

export interface LossInputs {
  /** `[B, T, vocab]`. */
  logits: tf.Tensor3D;
  /** `[B, T, Dl]` after the LLM's final norm. */
  lastHiddenState: tf.Tensor3D;
  /** One per batch row. */
  samples: readonly LossSample[];
  /** One per batch row: the raw MAE features of the sample's images (the regression targets). */
  targets: readonly ImageFeatures[];
  adapters: Pick<LM4LVAdapters, "deAdapt">;
}

export interface LossValues {
  loss: tf.Scalar;
  ce: tf.Scalar;
  mse: tf.Scalar;
}

/** `{loss, ce, mse}` from the LM outputs; differentiable with respect to the adapter variables. */
export function lm4lvLoss({ logits, lastHiddenState, samples, targets, adapters }: LossInputs): LossValues {
  const [B, T, V] = logits.shape;
  const D = lastHiddenState.shape[2];
  if (lastHiddenState.shape[0] !== B || lastHiddenState.shape[1] !== T) {
    throw new Error(`lm4lvLoss: lastHiddenState shape ${JSON.stringify(lastHiddenState.shape)} does not match logits ${JSON.stringify(logits.shape)}`);
  }
  if (samples.length !== B) throw new Error(`lm4lvLoss: ${samples.length} samples for a batch of ${B}`);
  if (targets.length !== B) throw new Error(`lm4lvLoss: ${targets.length} target sets for a batch of ${B}`);

  // Text: flat row b·T + t of the logits predicts labels[b][t + 1].
  const ceRows: number[] = [];
  const ceLabels: number[] = [];
  samples.forEach((s, b) => {
    if (s.labels.length !== T) throw new Error(`lm4lvLoss: sample ${b} has ${s.labels.length} labels, the sequence has ${T} positions`);
    for (let t = 0; t + 1 < T; t++) {
      const label = s.labels[t + 1];
      if (label === IGNORE_INDEX) continue;
      if (!Number.isInteger(label) || label < 0 || label >= V) throw new Error(`lm4lvLoss: sample ${b} label ${label} at position ${t + 1} is outside the vocabulary [0, ${V})`);
      ceRows.push(b * T + t);
      ceLabels.push(label);
    }
  });

  return tf.tidy(() => {
    let ce: tf.Scalar = tf.scalar(0);
    if (ceRows.length > 0) {
      const rows = tf.gather(logits.reshape([B * T, V]), tf.tensor1d(ceRows, "int32")); // (M, V)
      const logProbs = tf.logSoftmax(rows, -1); // (M, V)
      const picked = logProbs.mul(tf.oneHot(tf.tensor1d(ceLabels, "int32"), V)).sum(-1); // (M)
      ce = picked.mean().neg() as tf.Scalar;
    }

    // Vision: hidden rows and target rows in the same order, grouped by (sample, image).
    const hiddenRows: number[] = [];
    const targetParts: tf.Tensor2D[] = [];
    samples.forEach((s, b) => {
      const byImage = new Map<number, VisionTarget[]>();
      for (const vt of s.visionTargets) {
        if (!Number.isInteger(vt.position) || vt.position < 0 || vt.position >= T) {
          throw new Error(`lm4lvLoss: sample ${b} vision target position ${vt.position} is outside [0, ${T})`);
        }
        const group = byImage.get(vt.imageIndex) ?? [];
        group.push(vt);
        byImage.set(vt.imageIndex, group);
      }
      for (const [k, group] of byImage) {
        const feats = imageFeatureRows(targets[b], k); // (1+N, Dv)
        for (const vt of group) {
          if (!Number.isInteger(vt.tokenIndex) || vt.tokenIndex < 0 || vt.tokenIndex >= feats.shape[0]) {
            throw new Error(`lm4lvLoss: sample ${b} vision target token ${vt.tokenIndex} of image ${k} is outside [0, ${feats.shape[0]})`);
          }
          hiddenRows.push(b * T + vt.position);
        }
        targetParts.push(tf.gather(feats, tf.tensor1d(group.map((vt) => vt.tokenIndex), "int32"))); // (n, Dv)
      }
    });
    let mse: tf.Scalar = tf.scalar(0);
    if (hiddenRows.length > 0) {
      const hidden = tf.gather(lastHiddenState.reshape([B * T, D]), tf.tensor1d(hiddenRows, "int32")); // (K, Dl)
      const predicted = adapters.deAdapt(hidden) as tf.Tensor2D; // (K, Dv)
      const target = tf.concat(targetParts, 0); // (K, Dv)
      if (predicted.shape[1] !== target.shape[1]) {
        throw new Error(`lm4lvLoss: de-adapter output width ${predicted.shape[1]} differs from the target feature width ${target.shape[1]}`);
      }
      mse = predicted.sub(target).square().mean() as tf.Scalar;
    }
    return { loss: ce.add(mse) as tf.Scalar, ce, mse };
  }) as LossValues;
}

/** One training sample: its built sequence and the raw MAE features of its images. */
export interface TrainingSample {
  seq: SequenceLayout & LossSample;
  imageFeatures: ImageFeatures;
}

/**
 * The whole training objective of one same-layout batch: assemble the input embeddings, run the
 * frozen LM (no cache), and compute `lm4lvLoss` with the samples' own image features as targets.
 * Call it inside `tf.variableGrads(() => lm4lvForwardLoss(...).loss)` to train (a tfjs LM: its
 * synchronous `forwardSync` is differentiated).
 */
export function lm4lvForwardLoss(lm: SyncCausalLM, adapters: LM4LVAdapters, batch: readonly TrainingSample[]): LossValues {
  return tf.tidy((): tf.TensorContainerObject & LossValues => {
    const inputsEmbeds = assembleBatchInputsEmbeds(lm, batch.map((s) => s.seq), batch.map((s) => s.imageFeatures), adapters); // (B, T, Dl)
    const out = lm.forwardSync({ inputsEmbeds, useCache: false });
    return lm4lvLoss({
      logits: out.logits,
      lastHiddenState: out.lastHiddenState,
      samples: batch.map((s) => s.seq),
      targets: batch.map((s) => s.imageFeatures),
      adapters,
    }) as tf.TensorContainerObject & LossValues;
  }) as LossValues;
}
