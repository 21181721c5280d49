import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { ViTMAE } from "@lm4lv/mae";
import { buildViTDecoder, buildViTEncoder } from "./vit-export.js";
import { OrtVisionModel } from "./runtime.js";
import { caseTensor, maxAbsDiff, tempDir } from "@lm4lv/core/testing";
import { VIT_MAE_TINY_DIR as VIT_MAE_TINY } from "@lm4lv/mae/testing";

const CASE = "mask_ratio_0.0_identity_noise";
let dir: string;
let mae: ViTMAE;
let ortModel: OrtVisionModel;
let pixels: tf.Tensor4D;

beforeAll(async () => {
  await initBackend("cpu");
  dir = tempDir("onnx-vit");
  mae = ViTMAE.fromPretrained(VIT_MAE_TINY);
  buildViTEncoder(mae).save(join(dir, "enc.onnx"));
  buildViTDecoder(mae).save(join(dir, "dec.onnx"));
  ortModel = await OrtVisionModel.create(join(dir, "enc.onnx"), join(dir, "dec.onnx"), mae, { intraOpThreads: 1 });
  const px = caseTensor(VIT_MAE_TINY, `${CASE}/inputs/pixel_values`);
  pixels = tf.tensor4d(px.data as Float32Array, px.shape as [number, number, number, number]);
});
afterAll(() => {
  ortModel.dispose();
  mae.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("ViTMAE on ONNX Runtime", () => {
  it("encodes like the reference (HF identity case) and like tfjs", async () => {
    const got = await ortModel.encode(pixels);
    expect(got.shape).toEqual([2, 65, 48]);
    const ref = caseTensor(VIT_MAE_TINY, `${CASE}/outputs/last_hidden_state`).data;
    expect(maxAbsDiff(got.dataSync(), ref)).toBeLessThan(1e-4);
    const tfjs = mae.encodeSync(pixels);
    expect(maxAbsDiff(got.dataSync(), tfjs.dataSync())).toBeLessThan(1e-4);
    tf.dispose([got, tfjs]);
  });

  it("decodes like the reference reconstruction and like tfjs", async () => {
    const feats = mae.encodeSync(pixels);
    const got = await ortModel.decode(feats);
    expect(got.shape).toEqual([2, 3, 32, 32]);
    const ref = caseTensor(VIT_MAE_TINY, `${CASE}/outputs/reconstruction_unpatchified`).data;
    expect(maxAbsDiff(got.dataSync(), ref)).toBeLessThan(1e-4);
    const tfjs = mae.decodeSync(feats);
    expect(maxAbsDiff(got.dataSync(), tfjs.dataSync())).toBeLessThan(1e-4);
    tf.dispose([feats, got, tfjs]);
  });

  it("handles another batch size and names wrong shapes", async () => {
    const one = tf.slice(pixels, [1, 0, 0, 0], [1, 3, 32, 32]);
    const a = await ortModel.encode(one);
    const b = mae.encodeSync(one);
    expect(a.shape).toEqual([1, 65, 48]);
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeLessThan(1e-4);
    await expect(ortModel.encode(tf.zeros([1, 3, 16, 16]) as tf.Tensor4D)).rejects.toThrow(/\[1,3,16,16\], expected \[B, 3, 32, 32\]/);
    await expect(ortModel.decode(tf.zeros([1, 10, 48]) as tf.Tensor3D)).rejects.toThrow(/expected \[B, 65, 48\]/);
    tf.dispose([one, a, b]);
  });
});
