/**
 * The ViTMAE training graphs against the tfjs model they mirror: on the tiny HF checkpoint, the
 * ORT loss equals `mae.forward(...).loss` / `decoderFinetuneLoss` (and HF's own loss), and every
 * `grad.<name>` equals `tf.variableGrads` of the same loss.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { initBackend } from "@lm4lv/core";
import { ViTMAE, decoderFinetuneLoss, normalizeImageNet, randomMasking } from "@lm4lv/mae";
import type { OnnxGraph } from "./graph.js";
import { OrtTrainingSession } from "./training.js";
import type { ParamValue, TrainingStepResult } from "./training.js";
import { buildMaeFinetuneGraph, buildMaePretrainGraph, maeMaskingFeeds, MAE_FINETUNE_INPUT } from "./train-vit.js";
import { caseTensor, maxAbsDiff } from "@lm4lv/core/testing";
import { VIT_MAE_TINY_DIR as VIT_MAE_TINY } from "@lm4lv/mae/testing";

const CASE = "mask_ratio_0.75";
let mae: ViTMAE;
let pixelData: Float32Array; // [2, 3, 32, 32] normalised (HF case input)
let noise: Float32Array; // [2, 64]

beforeAll(async () => {
  await initBackend("cpu");
  mae = ViTMAE.fromPretrained(VIT_MAE_TINY);
  pixelData = caseTensor(VIT_MAE_TINY, `${CASE}/inputs/pixel_values`).data as Float32Array;
  noise = caseTensor(VIT_MAE_TINY, `${CASE}/inputs/noise`).data as Float32Array;
});
afterAll(() => mae?.dispose());

const B = 2;
const pixelShape = (): [number, number, number, number] => [B, 3, mae.imageSize, mae.imageSize];

/** The weights named by `select` as tf.Variables (HF layout, in place, as training makes them). */
function variables(select: (name: string) => boolean): Record<string, tf.Variable> {
  return mae.trainableParameters(select);
}

/** tfjs loss and gradients by HF name. */
function tfjsGrads(vars: Record<string, tf.Variable>, lossFn: () => tf.Scalar): { loss: number; grads: Record<string, Float32Array> } {
  const byTfName = new Map(Object.entries(vars).map(([n, v]) => [v.name, n]));
  const { value, grads } = tf.variableGrads(lossFn, Object.values(vars));
  const out: Record<string, Float32Array> = {};
  for (const [tfName, g] of Object.entries(grads)) {
    out[byTfName.get(tfName)!] = g.dataSync() as Float32Array;
    g.dispose();
  }
  const loss = value.dataSync()[0];
  value.dispose();
  return { loss, grads: out };
}

/** One ORT training step of `g` at the variables' values. */
async function ortStep(g: OnnxGraph, vars: Record<string, tf.Variable>, feeds: Record<string, ort.Tensor>): Promise<TrainingStepResult> {
  const session = await OrtTrainingSession.create(g, { intraOpThreads: 1 });
  try {
    const params: Record<string, ParamValue> = {};
    for (const p of session.params) params[p] = { data: vars[p].dataSync() as Float32Array, shape: vars[p].shape };
    return await session.run(params, feeds);
  } finally {
    await session.release();
  }
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * Every gradient within `tol` of tfjs's, as max |difference| / max |tfjs|. Key biases are the
 * exception: their exact gradient is zero (a bias on the keys adds the same q·b to a whole row of
 * scores, which softmax ignores), so both engines must give values negligible next to the
 * gradient of the same layer's query bias.
 */
function expectGradsClose(got: Record<string, Float32Array>, want: Record<string, Float32Array>, tol = 1e-4): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    if (name.endsWith(".key.bias")) {
      const ref = maxAbs(want[name.replace(/key\.bias$/, "query.bias")]);
      expect(ref, `query bias next to ${name}`).toBeGreaterThan(0);
      expect(maxAbs(got[name]) / ref, name).toBeLessThan(1e-5);
      expect(maxAbs(w) / ref, name).toBeLessThan(1e-5);
      continue;
    }
    const scale = maxAbs(w);
    expect(scale, `tfjs gradient of ${name} is all zero: the check could not fail`).toBeGreaterThan(0);
    expect(maxAbsDiff(got[name], w) / scale, name).toBeLessThan(tol);
  }
}

function pixelFeed(data: Float32Array, name: string): Record<string, ort.Tensor> {
  return { [name]: new ort.Tensor("float32", data, pixelShape()) };
}

describe("maeMaskingFeeds", () => {
  it("keeps, restores and masks exactly as randomMasking, ties included", () => {
    const n = 8;
    // ties (0.5, 0.5 and 0.2, 0.2) are broken by patch index, as the stable tfjs argsort
    const tied = Float32Array.from([0.5, 0.2, 0.5, 0.9, 0.2, 0.1, 0.7, 0.3, 0.4, 0.4, 0.4, 0.4, 0.0, 0.9, 0.1, 0.4]);
    const ratio = 0.5;
    const feeds = maeMaskingFeeds(tied, B, n, ratio);
    // token value = its flat row index, so the gathered values are the kept rows
    const x = tf.tensor3d(Float32Array.from({ length: B * n }, (_, i) => i), [B, n, 1]);
    const ref = randomMasking(x, tied, ratio);
    expect(Array.from(feeds.ids_keep.data as BigInt64Array, Number)).toEqual(Array.from(ref.kept.dataSync()));
    expect(Array.from(feeds.mask.data as Float32Array)).toEqual(Array.from(ref.mask.dataSync()));
    const restore = Array.from(ref.idsRestore.dataSync(), (v, i) => Math.floor(i / n) * n + v);
    expect(Array.from(feeds.ids_restore.data as BigInt64Array, Number)).toEqual(restore);
    expect(feeds.ids_keep.dims).toEqual([B * 4]);
    for (const t of [x, ref.kept, ref.mask, ref.idsRestore]) t.dispose();
    expect(() => maeMaskingFeeds(tied, B, 9, ratio)).toThrow(/noise has 16 values, expected 2×9/);
  });
});

describe("buildMaePretrainGraph", () => {
  it("loss and every gradient equal tfjs (mask 0.75, pixel MSE, fixed position embeddings)", async () => {
    const fixed = new Set(["vit.embeddings.position_embeddings", "decoder.decoder_pos_embed"]);
    const vars = variables((n) => !fixed.has(n));
    const g = buildMaePretrainGraph(mae, { batch: B, trainable: Object.keys(vars) });
    expect(g.trainableParams.sort()).toEqual(Object.keys(vars).sort()); // every trainable weight is used
    const feeds = { ...(pixelFeed(pixelData, "pixel_values")), ...maeMaskingFeeds(noise, B, mae.numPatches, 0.75) };
    const got = await ortStep(g, vars, feeds);

    const pixels = tf.tensor4d(pixelData, pixelShape());
    const noiseT = tf.tensor2d(noise, [B, mae.numPatches]);
    const want = tfjsGrads(vars, () => {
      const out = mae.forward(pixels, { noise: noiseT, maskRatio: 0.75, normPixLoss: false });
      for (const t of [out.lastHiddenState, out.idsRestore, out.mask, out.logits]) t.dispose();
      return out.loss;
    });
    pixels.dispose();
    noiseT.dispose();
    expect(relative(got.loss, want.loss)).toBeLessThan(1e-5);
    const hf = caseTensor(VIT_MAE_TINY, `${CASE}/outputs/loss`).data[0];
    expect(relative(got.loss, hf)).toBeLessThan(1e-5);
    expectGradsClose(got.grads, want.grads);
  });

  it("norm-pix target, every weight trainable (position embeddings too)", async () => {
    const vars = variables(() => true);
    const g = buildMaePretrainGraph(mae, { batch: B, maskRatio: 0.75, normPixLoss: true, trainable: Object.keys(vars) });
    const feeds = { ...(pixelFeed(pixelData, "pixel_values")), ...maeMaskingFeeds(noise, B, mae.numPatches, 0.75) };
    const got = await ortStep(g, vars, feeds);

    const pixels = tf.tensor4d(pixelData, pixelShape());
    const want = tfjsGrads(vars, () => {
      const out = mae.forward(pixels, { noise, maskRatio: 0.75, normPixLoss: true });
      for (const t of [out.lastHiddenState, out.idsRestore, out.mask, out.logits]) t.dispose();
      return out.loss;
    });
    pixels.dispose();
    expect(relative(got.loss, want.loss)).toBeLessThan(1e-5);
    expect(relative(got.loss, caseTensor(VIT_MAE_TINY, `${CASE}/outputs/loss_norm_pix_loss_true`).data[0])).toBeLessThan(1e-5);
    expectGradsClose(got.grads, want.grads);
  });

  it("names the parameter it cannot train", () => {
    expect(() => buildMaePretrainGraph(mae, { batch: B, trainable: ["decoder.nope"] })).toThrow(/trainable parameter "decoder.nope" is not a weight/);
    expect(() => buildMaePretrainGraph(mae, { batch: B, maskRatio: 0.999, trainable: ["decoder.mask_token"] })).toThrow(/keeps no patch of 64/);
  });
});

describe("buildMaeFinetuneGraph", () => {
  it("L1 loss and every decoder gradient equal tfjs (encoder frozen, no masking)", async () => {
    // images in [0,1]: the HF case pixels squashed
    const pixels01 = Float32Array.from(pixelData, (v) => 1 / (1 + Math.exp(-v)));
    const decoder = variables((n) => n.startsWith("decoder."));
    const g = buildMaeFinetuneGraph(mae, { batch: B, trainable: Object.keys(decoder) });
    // the mask token is not used without masking: no input, no gradient (tfjs gives none either)
    expect(g.trainableParams).not.toContain("decoder.mask_token");
    expect(g.trainableParams.length).toBe(Object.keys(decoder).length - 1);
    const got = await ortStep(g, decoder, pixelFeed(pixels01, MAE_FINETUNE_INPUT));

    const target01 = tf.tensor4d(pixels01, pixelShape());
    const want = tfjsGrads(decoder, () => {
      const features = mae.encodeSync(normalizeImageNet(target01));
      return decoderFinetuneLoss(mae.decodeSync(features), target01);
    });
    target01.dispose();
    expect(want.grads["decoder.mask_token"]).toBeUndefined();
    expect(relative(got.loss, want.loss)).toBeLessThan(1e-5);
    expectGradsClose(got.grads, want.grads);
  });

  it("refuses a trainable encoder weight, naming it", () => {
    expect(() => buildMaeFinetuneGraph(mae, { batch: B, trainable: ["decoder.decoder_pred.bias", "vit.layernorm.weight"] })).toThrow(
      /"vit.layernorm.weight" cannot be trainable \(the encoder is frozen/,
    );
  });
});
