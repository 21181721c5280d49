/**
 * The Llama training graphs on ONNX Runtime against tfjs autodiff of the same losses
 * (`tf.variableGrads`), on the llama_tiny fixture: loss and every gradient.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ort from "onnxruntime-node";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { IGNORE_INDEX, LM4LVAdapters, assembleBatchInputsEmbeds, lm4lvForwardLoss, lm4lvLoss } from "@lm4lv/adapters";
import type { SequenceSpan, VisionTarget } from "@lm4lv/adapters";
import { OrtTrainingSession } from "./training.js";
import { buildLlamaTextTrainingGraph, buildLM4LVTrainingGraph } from "./train-llama.js";
import { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";

let lm: LlamaForCausalLM;
/** A second copy of the model with every weight a tf.Variable, by the trainer's names. */
let trainable: { model: LlamaForCausalLM; vars: Record<string, tf.Variable> };

/** max |a − b| / max |b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1e-12);
}

beforeAll(async () => {
  await initBackend("cpu");
  lm = LlamaForCausalLM.fromPretrained(LLAMA_TINY);
  const model = LlamaForCausalLM.fromPretrained(LLAMA_TINY);
  trainable = { model, vars: model.trainableParameters() }; // every weight, HF names and layout
});
afterAll(() => {
  trainable.model.dispose();
  lm.dispose();
});

describe("text LM training graph", () => {
  it("loss and every weight's gradient match tfjs", async () => {
    const B = 2, T = 9, V = lm.vocabSize;
    const ids = Array.from({ length: B * (T + 1) }, (_, i) => (i * 37 + 11) % V);
    const inputs: number[] = [], targets: number[] = [];
    for (let b = 0; b < B; b++) {
      inputs.push(...ids.slice(b * (T + 1), b * (T + 1) + T));
      targets.push(...ids.slice(b * (T + 1) + 1, (b + 1) * (T + 1)));
    }
    const names = Object.keys(trainable.vars);
    const g = buildLlamaTextTrainingGraph(lm, { batch: B, seqLen: T, trainable: names });
    const session = await OrtTrainingSession.create(g, { intraOpThreads: 1 });
    const params = Object.fromEntries(names.map((n) => [n, { data: trainable.vars[n].dataSync() as Float32Array, shape: trainable.vars[n].shape }]));
    const out = await session.run(params, {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(inputs.map(BigInt)), [B, T]),
      labels: new ort.Tensor("int64", BigInt64Array.from(targets.map(BigInt)), [B * T, 1]),
    });

    const { value, grads } = tf.variableGrads(() => {
      const x = tf.gather(trainable.vars["model.embed_tokens.weight"], tf.tensor2d(inputs, [B, T], "int32")) as unknown as tf.Tensor3D;
      const { logits } = trainable.model.forwardSync({ inputsEmbeds: x });
      const logp = tf.logSoftmax(logits.reshape([B * T, V]));
      return tf.neg(tf.mean(tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(targets, "int32"), V)), -1))) as tf.Scalar;
    }, Object.values(trainable.vars));
    expect(Math.abs(out.loss - value.dataSync()[0]) / value.dataSync()[0]).toBeLessThan(1e-5);
    const byTfName = new Map(names.map((n) => [trainable.vars[n].name, n]));
    let worst = 0;
    for (const [tfName, grad] of Object.entries(grads)) {
      const name = byTfName.get(tfName)!;
      worst = Math.max(worst, relErr(out.grads[name], grad.dataSync()));
    }
    expect(Object.keys(grads).length).toBe(names.length);
    expect(worst).toBeLessThan(1e-4);
    tf.dispose([value, ...Object.values(grads)]);
    await session.release();
  });
});

describe("LM4LV training graph", () => {
  it("CE + MSE and the adapter / task-token gradients match lm4lvForwardLoss under tfjs", async () => {
    const dv = 12, n1 = 5, nTask = 3, B = 2;
    const adapters = new LM4LVAdapters({ visionHidden: dv, llmHidden: lm.hiddenSize, numTaskTokens: nTask, seed: 3 });
    // make the zero-initialised task tokens non-trivial
    adapters.namedVariables().task_tokens.assign(tf.randomNormal([nTask, lm.hiddenSize], 0, 0.5, "float32", 9));
    // [BOS, 7, img0 ×5, task ×3, 9, 10, <img1 ×5>, 11] with CE labels on 9, 10, 11 and vision targets img1
    const spans: SequenceSpan[] = [
      { kind: "image", imageIndex: 0, start: 2, length: n1 },
      { kind: "task", start: 7, length: nTask },
      { kind: "image", imageIndex: 1, start: 12, length: n1 },
    ];
    const T = 18;
    const inputIds = Array.from({ length: T }, (_, t) => (t * 13 + 1) % lm.vocabSize);
    const labels = inputIds.map((id, t) => (t === 10 || t === 11 || t === 17 ? id : IGNORE_INDEX));
    const visionTargets: VisionTarget[] = Array.from({ length: n1 }, (_, i) => ({ position: 11 + i, imageIndex: 1, tokenIndex: i }));
    const seq = { inputIds, spans, labels, visionTargets };
    const feats = tf.randomNormal([B, 2, n1, dv], 0, 1, "float32", 5) as tf.Tensor4D;

    const g = buildLM4LVTrainingGraph(lm, adapters.namedVariables(), seq, { batch: B });
    const session = await OrtTrainingSession.create(g, { intraOpThreads: 1 });
    const vars = adapters.namedVariables();
    const params = Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, { data: v.dataSync() as Float32Array, shape: v.shape }]));
    const out = await session.run(params, { features: new ort.Tensor("float32", feats.dataSync() as Float32Array, [B, 2, n1, dv]) });

    const samples = Array.from({ length: B }, (_, b) => ({ seq, imageFeatures: feats.slice([b, 0, 0, 0], [1, 2, n1, dv]).reshape([2, n1, dv]) as tf.Tensor3D }));
    let parts: number[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const r = lm4lvForwardLoss(lm, adapters, samples);
      parts = [r.ce.dataSync()[0], r.mse.dataSync()[0]];
      return r.loss;
    }, adapters.variables());
    expect(Math.abs(out.loss - value.dataSync()[0]) / value.dataSync()[0]).toBeLessThan(1e-5);
    expect(out.parts.ce).toBeCloseTo(parts[0], 4);
    expect(out.parts.mse).toBeCloseTo(parts[1], 4);
    for (const [name, v] of Object.entries(vars)) {
      const gt = grads[v.name].dataSync();
      expect(relErr(out.grads[name], gt), name).toBeLessThan(1e-4);
    }
    // input noise on the teacher-forced image: zero noise is the plain graph; noise changes the loss,
    // and equals the plain graph fed noisy inputs with the clean targets (checked through tfjs)
    const noisy = await OrtTrainingSession.create(buildLM4LVTrainingGraph(lm, adapters.namedVariables(), seq, { batch: B, inputNoise: true }), { intraOpThreads: 1 });
    const featTensor = new ort.Tensor("float32", feats.dataSync() as Float32Array, [B, 2, n1, dv]);
    const zero = await noisy.run(params, { features: featTensor, input_noise: new ort.Tensor("float32", new Float32Array(B * n1 * dv), [B, n1, dv]) });
    expect(zero.loss).toBeCloseTo(out.loss, 5);
    const noise = tf.randomNormal([B, n1, dv], 0, 0.3, "float32", 11);
    const withNoise = await noisy.run(params, { features: featTensor, input_noise: new ort.Tensor("float32", noise.dataSync() as Float32Array, [B, n1, dv]) });
    const inputs = tf.concat([feats.slice([0, 0, 0, 0], [B, 1, n1, dv]), tf.add(feats.slice([0, 1, 0, 0], [B, 1, n1, dv]), noise.expandDims(1))], 1);
    const ref = tf.tidy(() => {
      const embeds = assembleBatchInputsEmbeds(lm, samples.map(() => seq), Array.from({ length: B }, (_, b) => inputs.slice([b, 0, 0, 0], [1, 2, n1, dv]).reshape([2, n1, dv]) as tf.Tensor3D), adapters);
      const o = lm.forwardSync({ inputsEmbeds: embeds });
      return lm4lvLoss({ logits: o.logits, lastHiddenState: o.lastHiddenState, samples: samples.map(() => seq), targets: samples.map((s) => s.imageFeatures), adapters }).loss.dataSync()[0];
    });
    expect(Math.abs(withNoise.loss - out.loss)).toBeGreaterThan(1e-3);
    expect(Math.abs(withNoise.loss - ref) / ref).toBeLessThan(1e-5);
    tf.dispose([value, feats, noise, inputs, ...Object.values(grads), ...samples.map((s) => s.imageFeatures)]);
    adapters.dispose();
    await session.release();
    await noisy.release();
  });
});
