import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { ViTMAE } from "@lm4lv/mae";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { LM4LVAdapters } from "@lm4lv/adapters";
import { generateVisualTokens } from "@lm4lv/sampler";
import { exportOnnx, loadOrtModels } from "./export.js";
import type { OrtModels } from "./export.js";
import { generateVisualTokensOrt } from "./runtime.js";
import { maxAbsDiff, tempDir } from "@lm4lv/core/testing";
import { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";
import { VIT_MAE_TINY_DIR as VIT_MAE_TINY } from "@lm4lv/mae/testing";

const PROMPT = [1, 11, 186, 253, 48, 97, 30];
let dir: string;
let mae: ViTMAE;
let lm: LlamaForCausalLM;
let adapters: LM4LVAdapters;
let ortModels: OrtModels;
let prompt: tf.Tensor3D;

beforeAll(async () => {
  await initBackend("cpu");
  dir = tempDir("onnx-lm4lv");
  mae = ViTMAE.fromPretrained(VIT_MAE_TINY);
  lm = LlamaForCausalLM.fromPretrained(LLAMA_TINY);
  adapters = new LM4LVAdapters({ visionHidden: mae.hiddenSize, llmHidden: lm.hiddenSize, seed: 7 });
  exportOnnx({ mae, llm: lm, adapters }, dir);
  ortModels = await loadOrtModels(dir, { intraOpThreads: 1 });
  prompt = lm.embedSync(tf.tensor2d([PROMPT], [1, PROMPT.length], "int32"));
});
afterAll(() => {
  ortModels.dispose();
  tf.dispose([prompt]);
  adapters.dispose();
  lm.dispose();
  mae.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Decoded, de-normalised, clamped images as one flat array in [0, 1]. */
function images(pixels: tf.Tensor4D): Float32Array {
  const out = mae.postprocess(pixels);
  return Float32Array.from(out.flatMap((im) => Array.from(im.data)));
}

describe("LM4LV visual generation: tfjs vs ONNX Runtime", () => {
  it("writes the same features and decodes the same image (unfolded OrtCausalLM and the folded step graph)", async () => {
    const n = mae.numTokens; // 65
    const { vision, lm: ortLm, visualStep } = ortModels;
    expect(vision && ortLm && visualStep).toBeTruthy();

    const ref = await generateVisualTokens({ lm, adapters, promptEmbeds: prompt, numTokens: n }); // [1, 65, 48]
    const unfolded = await generateVisualTokens({ lm: ortLm!, adapters, promptEmbeds: prompt, numTokens: n });
    const folded = await generateVisualTokensOrt({ step: visualStep!, promptEmbeds: prompt, numTokens: n });
    expect(folded.shape).toEqual([1, n, 48]);
    expect(maxAbsDiff(unfolded.dataSync(), ref.dataSync())).toBeLessThan(1e-4);
    expect(maxAbsDiff(folded.dataSync(), ref.dataSync())).toBeLessThan(1e-4);
    // the loop really feeds back: tokens differ along the sequence
    const d = ref.dataSync();
    expect(maxAbsDiff(d.slice(0, 48), d.slice(30 * 48, 31 * 48))).toBeGreaterThan(1e-3);

    const imgRef = images(mae.decodeSync(ref));
    for (const feats of [unfolded, folded]) {
      const img = images(await vision!.decode(feats));
      expect(maxAbsDiff(img, imgRef)).toBeLessThanOrEqual(1 / 255);
    }
    tf.dispose([ref, unfolded, folded]);
  });

  it("one session of the folded step graph serves the LM (logits for the last num_logits positions) and the visual loop", async () => {
    const { lm: ortLm, visualStep } = ortModels;
    const ids = tf.tensor2d([PROMPT], [1, PROMPT.length], "int32");
    const before = await generateVisualTokensOrt({ step: visualStep!, promptEmbeds: prompt, numTokens: 5 });
    // the LM over the same session: every position's logits, as tfjs
    const a = await ortLm!.forward({ inputIds: ids });
    const b = lm.forwardSync({ inputIds: ids });
    expect(a.logits.shape).toEqual([1, PROMPT.length, 256]);
    expect(maxAbsDiff(a.logits.dataSync(), b.logits.dataSync())).toBeLessThan(1e-4);
    expect(maxAbsDiff(a.lastHiddenState.dataSync(), b.lastHiddenState.dataSync())).toBeLessThan(1e-4);
    // runs interleave freely: the visual loop after the LM gives the same tokens
    const after = await generateVisualTokensOrt({ step: visualStep!, promptEmbeds: prompt, numTokens: 5 });
    expect(maxAbsDiff(after.dataSync(), before.dataSync())).toBe(0);
    tf.dispose([ids, before, after, a.logits, a.lastHiddenState, b.logits, b.lastHiddenState]);
  });

  it("the folded graph follows the definition for a batch of two identical prompts", async () => {
    const two = tf.concat([prompt, prompt], 0) as tf.Tensor3D;
    const a = await generateVisualTokensOrt({ step: ortModels.visualStep!, promptEmbeds: two, numTokens: 4 });
    const b = await generateVisualTokens({ lm, adapters, promptEmbeds: prompt, numTokens: 4 });
    const ad = a.dataSync();
    expect(maxAbsDiff(ad.slice(0, 4 * 48), b.dataSync())).toBeLessThan(1e-4);
    expect(maxAbsDiff(ad.slice(4 * 48), b.dataSync())).toBeLessThan(1e-4);
    await expect(generateVisualTokensOrt({ step: ortModels.visualStep!, promptEmbeds: tf.zeros([1, 2, 8]) as tf.Tensor3D })).rejects.toThrow(/expected \[B, T, 64\]/);
    tf.dispose([two, a, b]);
  });

  it("runs the whole image path in ORT: encode → adapt → generate → decode, as tfjs", async () => {
    const pixels = tf.randomUniform([1, 3, 32, 32], -1, 1, "float32", 5) as tf.Tensor4D;
    const fOrt = await ortModels.vision!.encode(pixels);
    const fTf = mae.encodeSync(pixels);
    expect(maxAbsDiff(fOrt.dataSync(), fTf.dataSync())).toBeLessThan(1e-4);
    // LQ features in the prompt (as the human turn does), then generation
    const promptOrt = tf.concat([prompt, adapters.adapt(fOrt)], 1) as tf.Tensor3D;
    const promptTf = tf.concat([prompt, adapters.adapt(fTf)], 1) as tf.Tensor3D;
    const gOrt = await generateVisualTokensOrt({ step: ortModels.visualStep!, promptEmbeds: promptOrt, numTokens: 65 });
    const gTf = await generateVisualTokens({ lm, adapters, promptEmbeds: promptTf, numTokens: 65 });
    expect(maxAbsDiff(gOrt.dataSync(), gTf.dataSync())).toBeLessThan(1e-4);
    expect(maxAbsDiff(images(await ortModels.vision!.decode(gOrt)), images(mae.decodeSync(gTf)))).toBeLessThanOrEqual(1 / 255);
    tf.dispose([pixels, fOrt, fTf, promptOrt, promptTf, gOrt, gTf]);
  });

  it("with int8 / int4 (blocks of 32 and 128) LM weights the folded step equals the sampler over the same export, and the image moves little", async () => {
    const n = mae.numTokens;
    const refImg = images(mae.decodeSync(await generateVisualTokens({ lm, adapters, promptEmbeds: prompt, numTokens: n }))); // fp32, tfjs
    const report: Record<string, number | string>[] = [];
    const settings = [
      { name: "int8", quantize: "int8", minPsnr: 40 },
      { name: "int4", quantize: "int4", minPsnr: 25 },
      { name: "int4-b128", quantize: "int4", int4BlockSize: 128, minPsnr: 25 },
    ] as const;
    for (const s of settings) {
      const { name, quantize } = s;
      const int4BlockSize = "int4BlockSize" in s ? s.int4BlockSize : undefined;
      // float activations (accuracy level 0): the two loops over the same weights agree to float rounding;
      // with the default level 4, activations rounded to int8 make 1e-7 differences flip a step now and then
      const exact = `${dir}-${name}-acc0`;
      exportOnnx({ mae, llm: lm, adapters }, exact, { quantize, int4BlockSize, accuracyLevel: 0 });
      const m0 = await loadOrtModels(exact, { intraOpThreads: 1 });
      const folded = await generateVisualTokensOrt({ step: m0.visualStep!, promptEmbeds: prompt, numTokens: n });
      const unfolded = await generateVisualTokens({ lm: m0.lm!, adapters, promptEmbeds: prompt, numTokens: n });
      expect(maxAbsDiff(folded.dataSync(), unfolded.dataSync()), name).toBeLessThan(1e-4);
      m0.dispose();
      tf.dispose([folded, unfolded]);
      rmSync(exact, { recursive: true, force: true });

      const out = `${dir}-${name}`;
      exportOnnx({ mae, llm: lm, adapters }, out, { quantize, int4BlockSize });
      const m = await loadOrtModels(out, { intraOpThreads: 1 });
      const feats = await generateVisualTokensOrt({ step: m.visualStep!, promptEmbeds: prompt, numTokens: n });
      const img = images(await m.vision!.decode(feats));
      let se = 0;
      for (let i = 0; i < img.length; i++) se += (img[i] - refImg[i]) ** 2;
      const psnr = 10 * Math.log10(1 / (se / img.length));
      report.push({ weights: name, psnrVsFp32: +psnr.toFixed(2), maxAbsPixel: +maxAbsDiff(img, refImg).toFixed(4) });
      expect(psnr, name).toBeGreaterThan(s.minPsnr);
      m.dispose();
      feats.dispose();
      rmSync(out, { recursive: true, force: true });
    }
    console.log(JSON.stringify(report)); // random adapters and LM: how far the decoded image moves, not a restoration score
  });
});
