import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { ViTMAE } from "./model.js";
import { decoderFinetuneLoss, maePretrainingLoss } from "./losses.js";
import { denormalizeImageNet } from "./ops.js";
import { readCase } from "@lm4lv/core/testing";
import { VIT_MAE_TINY_DIR as FIXTURE_DIR, data } from "./testing.js";

/** Index of the largest |g| (so the finite-difference check compares a well-resolved value). */
function argmaxAbs(g: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[best])) best = i;
  return best;
}

/** Central difference of `loss` w.r.t. element `i` of variable `v`. */
function finiteDifference(loss: () => number, v: tf.Variable, i: number, eps: number): number {
  const base = v.dataSync().slice() as Float32Array;
  const at = (delta: number) => {
    const p = base.slice();
    p[i] += delta;
    v.assign(tf.tensor(p, v.shape));
    return loss();
  };
  const up = at(eps);
  const down = at(-eps);
  v.assign(tf.tensor(base, v.shape));
  return (up - down) / (2 * eps);
}

const isDecoder = (name: string) => name.startsWith("decoder.");

const CHECKED = [
  "decoder.decoder_pred.bias",
  "decoder.decoder_pred.weight",
  "decoder.decoder_norm.weight",
  "decoder.decoder_layers.0.attention.attention.query.weight",
  "decoder.decoder_layers.1.intermediate.dense.weight",
  "decoder.decoder_embed.weight",
  "decoder.decoder_pos_embed",
];

describe("MAE losses: gradients w.r.t. decoder parameters agree with finite differences (cpu)", () => {
  let mae: ViTMAE;
  let pixels: tf.Tensor4D;
  let noise: Float32Array;
  beforeAll(async () => {
    await initBackend("cpu");
    mae = ViTMAE.fromPretrained(FIXTURE_DIR);
    const c = readCase(FIXTURE_DIR, "mask_ratio_0.75");
    const px = c.get("inputs/pixel_values")!;
    // one sample keeps the check small
    pixels = tf.tensor4d((px.data as Float32Array).slice(0, 3 * 32 * 32), [1, 3, 32, 32]);
    noise = (c.get("inputs/noise")!.data as Float32Array).slice(0, 64);
  });
  afterAll(() => {
    pixels.dispose();
    mae.dispose();
  });

  it("trainableParameters(decoder.*) makes exactly the decoder trainable, as HF-layout variables", () => {
    const vars = mae.trainableParameters(isDecoder);
    const decoderNames = [...mae.namedParameters().keys()].filter(isDecoder);
    expect(Object.keys(vars).sort()).toEqual(decoderNames.sort());
    expect(Object.keys(vars).length).toBe(40);
    for (const v of Object.values(vars)) expect(v.trainable).toBe(true);
    expect(vars["decoder.decoder_pred.weight"].shape).toEqual([4 * 4 * 3, 32]); // HF [out, in]
    expect(mae.namedParameters().get("decoder.decoder_pred.weight")).toBe(vars["decoder.decoder_pred.weight"]);
    expect(mae.namedParameters().get("vit.layernorm.weight")).not.toBeInstanceOf(tf.Variable);
    expect(mae.trainableParameters(isDecoder)["decoder.mask_token"]).toBe(vars["decoder.mask_token"]); // stable
  });

  for (const normPixLoss of [false, true]) {
    it(`pre-training loss (mask 0.75, normPixLoss ${normPixLoss})`, () => {
      const vars = mae.trainableParameters(isDecoder);
      const f = () => mae.forward(pixels, { noise, maskRatio: 0.75, normPixLoss }).loss;
      const checked = [...CHECKED, "decoder.mask_token"];
      const { value, grads } = tf.variableGrads(f, checked.map((n) => vars[n]));
      value.dispose();
      const lossValue = () => tf.tidy(() => f().dataSync()[0]);
      for (const name of checked) {
        const g = data(grads[vars[name].name]);
        const i = argmaxAbs(g);
        const fd = finiteDifference(lossValue, vars[name], i, 1e-2);
        expect(Math.abs(g[i]), name).toBeGreaterThan(1e-3);
        expect(Math.abs(fd - g[i]) / Math.abs(g[i]), `${name}[${i}] analytic ${g[i]} vs numeric ${fd}`).toBeLessThan(2e-2);
      }
      tf.dispose(Object.values(grads));
    });
  }

  it("decoder fine-tuning L1 loss (mask ratio 0, encoder frozen)", () => {
    const vars = mae.trainableParameters(isDecoder);
    const feats = mae.encodeSync(pixels); // computed once: the encoder is frozen
    const target = tf.tidy(() => tf.clipByValue(denormalizeImageNet(pixels), 0, 1)) as tf.Tensor4D;
    const f = () => decoderFinetuneLoss(mae.decodeSync(feats), target);
    const { value, grads } = tf.variableGrads(f, CHECKED.map((n) => vars[n]));
    value.dispose();
    const lossValue = () => tf.tidy(() => f().dataSync()[0]);
    for (const name of CHECKED) {
      const g = data(grads[vars[name].name]);
      const i = argmaxAbs(g);
      const fd = finiteDifference(lossValue, vars[name], i, 3e-3);
      expect(Math.abs(g[i]), name).toBeGreaterThan(1e-4);
      expect(Math.abs(fd - g[i]) / Math.abs(g[i]), `${name}[${i}] analytic ${g[i]} vs numeric ${fd}`).toBeLessThan(2e-2);
    }
    tf.dispose([feats, target, ...Object.values(grads)]);
  });
});

describe.each(["wasm", "cpu"])("decoder training steps on %s", (backend) => {
  let pixels: tf.Tensor4D;
  let noise: Float32Array;
  beforeAll(async () => {
    await initBackend(backend);
    const c = readCase(FIXTURE_DIR, "mask_ratio_0.75");
    pixels = tf.tensor4d(c.get("inputs/pixel_values")!.data as Float32Array, [2, 3, 32, 32]);
    noise = c.get("inputs/noise")!.data as Float32Array;
  });
  afterAll(() => pixels.dispose());

  it("Adam on the L1 fine-tuning loss lowers it and leaves the encoder unchanged", () => {
    const fresh = ViTMAE.fromPretrained(FIXTURE_DIR);
    const encBefore = data(fresh.namedParameters().get("vit.encoder.layer.0.output.dense.weight")!).slice();
    const vars = Object.values(fresh.trainableParameters(isDecoder));
    const feats = fresh.encodeSync(pixels);
    const target = tf.tidy(() => tf.clipByValue(denormalizeImageNet(pixels), 0, 1)) as tf.Tensor4D;
    const opt = tf.train.adam(1e-2, 0.9, 0.95);
    const loss = () => decoderFinetuneLoss(fresh.decodeSync(feats), target);
    const first = tf.tidy(() => loss().dataSync()[0]);
    for (let s = 0; s < 10; s++) opt.minimize(loss, true, vars)?.dispose();
    const last = tf.tidy(() => loss().dataSync()[0]);
    expect(last).toBeLessThan(first * 0.9);
    expect(Array.from(data(fresh.namedParameters().get("vit.encoder.layer.0.output.dense.weight")!))).toEqual(Array.from(encBefore));
    opt.dispose();
    tf.dispose([feats, target]);
    fresh.dispose();
  });

  it("Adam on the masked pre-training loss (gradients through the token gather) lowers it", () => {
    const fresh = ViTMAE.fromPretrained(FIXTURE_DIR);
    const vars = Object.values(fresh.trainableParameters(isDecoder));
    const opt = tf.train.adam(1e-2, 0.9, 0.95);
    const loss = () => fresh.forward(pixels, { noise, maskRatio: 0.75 }).loss;
    const first = tf.tidy(() => loss().dataSync()[0]);
    for (let s = 0; s < 5; s++) opt.minimize(loss, true, vars)?.dispose();
    const last = tf.tidy(() => loss().dataSync()[0]);
    expect(last).toBeLessThan(first * 0.9);
    opt.dispose();
    fresh.dispose();
  });
});

describe("loss functions on small hand-made tensors", () => {
  beforeAll(async () => {
    await initBackend("cpu");
  });

  it("pre-training loss averages only removed patches; norm-pix uses unbiased variance and 1e-6", () => {
    const pred = tf.tensor3d([[[1, 2, 3], [0, 0, 0]]]);
    const target = tf.tensor3d([[[1, 2, 5], [1, 3, 2]]]);
    const mask = tf.tensor2d([[0, 1]]);
    // only patch 1: mean((0−1)², (0−3)², (0−2)²) = 14/3
    expect(maePretrainingLoss(pred, target, mask).dataSync()[0]).toBeCloseTo(14 / 3, 5);
    // norm-pix: target [1,3,2] → mean 2, unbiased var 1 → [−1, 1, 0]/√(1+1e-6); pred 0 → mse 2/3/(1+1e-6)
    expect(maePretrainingLoss(pred, target, mask, { normPixLoss: true }).dataSync()[0]).toBeCloseTo(2 / 3 / (1 + 1e-6), 6);
    expect(maePretrainingLoss(pred, target, tf.tensor2d([[0, 0]])).dataSync()[0]).toBeNaN();
    expect(() => maePretrainingLoss(pred, tf.tensor3d([[[1, 2]]]), mask)).toThrow(/differ/);
  });

  it("decoder L1 loss compares the de-normalised reconstruction with the [0,1] target, plus λ·perceptual", () => {
    const target = tf.fill([1, 3, 2, 2], 0.5) as tf.Tensor4D;
    // recon normalised so that denorm gives 0.5 + 0.1 everywhere
    const recon = tf.tidy(() => tf.div(tf.sub(tf.fill([1, 3, 2, 2], 0.6), tf.tensor4d([0.485, 0.456, 0.406], [1, 3, 1, 1])), tf.tensor4d([0.229, 0.224, 0.225], [1, 3, 1, 1]))) as tf.Tensor4D;
    expect(decoderFinetuneLoss(recon, target).dataSync()[0]).toBeCloseTo(0.1, 5);
    const withPerceptual = decoderFinetuneLoss(recon, target, { perceptual: (a, b) => tf.mean(tf.square(tf.sub(a, b))) as tf.Scalar, perceptualWeight: 2 });
    expect(withPerceptual.dataSync()[0]).toBeCloseTo(0.1 + 2 * 0.01, 5);
  });
});
