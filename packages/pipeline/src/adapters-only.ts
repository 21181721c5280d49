/**
 * The "adapters alone" ablation (no language model): LQ features → adapter → de-adapter → HQ
 * features, trained with the same MSE target as LM4LV's vision loss, token by token. It shows what
 * two linear maps achieve without the frozen LM in between.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { z } from "zod";
import { fieldPath, joinTiles, positiveInt, positiveNumber, validateConfig, type RgbImage } from "@lm4lv/core";
import { ShuffledBatches, runTraining, type TrainResult, type ProgressOptions } from "@lm4lv/train";
import type { LM4LV } from "./lm4lv.js";
import type { PairSource } from "./lm4lv-training.js";

/** MSE of de-adapter(adapter(MAE(LQ))) against MAE(HQ), mean over tokens and channels. */
export function adaptersOnlyLoss(model: LM4LV, pairs: readonly { lq: RgbImage; hq: RgbImage }[]): tf.Scalar {
  return tf.tidy(() => {
    const lq = model.encodeSync(pairs.map((p) => p.lq)); // [B, 1+N, Dv]
    const hq = model.encodeSync(pairs.map((p) => p.hq)); // [B, 1+N, Dv]
    const pred = model.adapters.deAdapt(model.adapters.adapt(lq)); // [B, 1+N, Dv]
    return tf.losses.meanSquaredError(hq, pred) as tf.Scalar;
  });
}

/** Restores with the adapters alone: decode(de-adapter(adapter(MAE(LQ)))), tile by tile for a tiled model. */
export async function restoreAdaptersOnly(model: LM4LV, lq: RgbImage): Promise<RgbImage> {
  const features = await model.encode(model.split(await model.fit(lq))); // [tiles², 1+N, Dv]
  const f = tf.tidy(() => model.adapters.deAdapt(model.adapters.adapt(features)));
  features.dispose();
  try {
    return joinTiles(await model.decode(f), model.tiles);
  } finally {
    f.dispose();
  }
}

/** The hyperparameters of the adapters-only ablation and their defaults (the one place each lives). */
export const ADAPTERS_ONLY_TRAINING_OPTIONS = z.object({
  /** Optimiser steps. */
  steps: positiveInt(),
  /** Pairs per step (at most the dataset's size). */
  batchSize: positiveInt().default(8),
  /** Learning rate (two linear maps and an MSE: higher than LM4LV's). */
  lr: positiveNumber().default(3e-3),
  /** Seed of the data order. */
  seed: z.number("expected an integer").int("expected an integer").default(0),
  /** Continue from `<outDir>/checkpoints/last.safetensors`. */
  resume: z.boolean().default(false),
});

export type TrainAdaptersOnlyOptions = z.input<typeof ADAPTERS_ONLY_TRAINING_OPTIONS> & {
  model: LM4LV;
  train: PairSource;
  outDir: string;
  progress?: boolean | ProgressOptions;
  handleSigint?: boolean;
};

/** Trains adapter + de-adapter (task tokens unused) and saves them like an LM4LV checkpoint (`extra.mode = "adapters-only"`). */
export async function trainAdaptersOnly(o: TrainAdaptersOnlyOptions): Promise<TrainResult> {
  const { model } = o;
  const h = validateConfig(o, ADAPTERS_ONLY_TRAINING_OPTIONS, (path) => `trainAdaptersOnly: ${fieldPath(path)}`);
  mkdirSync(o.outDir, { recursive: true });
  const batchSize = Math.min(h.batchSize, o.train.length);
  const batches = new ShuffledBatches({
    size: o.train.length,
    batchSize,
    seed: h.seed,
    load: async (idx) => model.splitPairs(await Promise.all(idx.map(async (i) => {
      const { lq, hq } = await o.train.get(i, batches.epoch);
      return { lq: await model.fit(lq), hq: await model.fit(hq) };
    }))),
  });
  const vars = model.adapters.namedVariables();
  const result = await runTraining({
    variables: { "adapter.weight": vars["adapter.weight"], "adapter.bias": vars["adapter.bias"], "de_adapter.weight": vars["de_adapter.weight"], "de_adapter.bias": vars["de_adapter.bias"] },
    loss: (pairs: { lq: RgbImage; hq: RgbImage }[]) => {
      const mse = adaptersOnlyLoss(model, pairs);
      return { loss: mse, parts: { mse } };
    },
    data: batches,
    totalSteps: h.steps,
    seed: h.seed,
    optimizer: { lr: h.lr },
    clipNorm: 1.0,
    batchSize,
    checkpointDir: join(o.outDir, "checkpoints"),
    checkpointEvery: 100,
    resume: h.resume,
    progress: o.progress ?? true,
    lossPlot: join(o.outDir, "loss.svg"),
    handleSigint: o.handleSigint ?? true,
    config: { mode: "adapters-only", task: model.task, tiles: model.tiles, steps: h.steps },
  });
  model.save(o.outDir, result.step, { mode: "adapters-only" });
  return result;
}
