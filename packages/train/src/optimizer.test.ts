import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend, readSafetensors, writeSafetensors } from "@lm4lv/core";
import { Adam } from "./optimizer.js";

/** PyTorch's Adam step (amsgrad off), in float64, on plain arrays. */
function torchAdamReference(
  p0: number[], grads: number[][], lrs: number[],
  o: { beta1: number; beta2: number; eps: number; weightDecay: number; decoupled: boolean },
): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((gIn, k) => {
    const t = k + 1;
    const lr = lrs[k];
    for (let i = 0; i < p.length; i++) {
      let g = gIn[i];
      if (o.weightDecay && !o.decoupled) g += o.weightDecay * p[i];
      if (o.weightDecay && o.decoupled) p[i] *= 1 - lr * o.weightDecay;
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      const bc1 = 1 - o.beta1 ** t;
      const bc2 = 1 - o.beta2 ** t;
      const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + o.eps;
      p[i] -= (lr / bc1) * (m[i] / denom);
    }
  });
  return p;
}

/** Deterministic pseudo-gradients, different per step and element, some tiny (so eps matters). */
function gradSequence(steps: number, n: number): number[][] {
  return Array.from({ length: steps }, (_, k) => Array.from({ length: n }, (_, i) => Math.sin(1.7 * k + 0.9 * i) * (i % 4 === 3 ? 1e-7 : 1 + i)));
}

describe("Adam", () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend("cpu");
    dir = mkdtempSync(join(tmpdir(), "lm4lv-adam-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cases = [
    { name: "defaults (0.9, 0.95, 1e-8, no decay)", opts: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, decoupled: true } },
    { name: "decoupled weight decay (AdamW)", opts: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decoupled: true } },
    { name: "L2 weight decay (torch Adam)", opts: { beta1: 0.8, beta2: 0.999, eps: 1e-6, weightDecay: 0.05, decoupled: false } },
  ];
  for (const c of cases) {
    it(`matches a float64 re-implementation of torch.optim.Adam: ${c.name}`, () => {
      const p0 = [0.5, -1.25, 2, 0.1, -0.3, 0.75];
      const steps = 8;
      const grads = gradSequence(steps, p0.length);
      const lrs = Array.from({ length: steps }, (_, k) => 0.01 * (1 + k) / steps);
      const w = tf.variable(tf.tensor(p0.slice(0, 2), [2]), true, "adam_w_" + c.name);
      const b = tf.variable(tf.tensor(p0.slice(2), [2, 2]), true, "adam_b_" + c.name);
      const adam = new Adam({ w, b }, c.opts);
      for (let k = 0; k < steps; k++) {
        const gw = tf.tensor(grads[k].slice(0, 2), [2]);
        const gb = tf.tensor(grads[k].slice(2), [2, 2]);
        adam.applyGradients({ w: gw, b: gb }, lrs[k]);
        gw.dispose();
        gb.dispose();
      }
      const got = [...w.dataSync(), ...b.dataSync()];
      const want = torchAdamReference(p0, grads, lrs, c.opts);
      got.forEach((g, i) => expect(Math.abs(g - want[i])).toBeLessThan(1e-6));
      // Moving at all: the update is not a no-op.
      expect(Math.abs(got[0] - p0[0])).toBeGreaterThan(1e-3);
      expect(adam.step).toBe(steps);
      adam.dispose();
      w.dispose();
      b.dispose();
    });
  }

  it("uses 0.9 / 0.95 / 1e-8 / no decay by default", () => {
    const w = tf.variable(tf.zeros([1]), true);
    const adam = new Adam({ w });
    expect(adam.options).toMatchObject({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 });
    adam.dispose();
    w.dispose();
  });

  it("state exported to safetensors and imported continues bit-for-bit", () => {
    const grads = gradSequence(6, 3);
    const makeVar = () => tf.variable(tf.tensor([0.3, -0.2, 1.1]), true);
    const step = (adam: Adam, k: number) => tf.tidy(() => adam.applyGradients({ p: tf.tensor(grads[k]) }, 0.02));

    const a = makeVar();
    const adamA = new Adam({ p: a });
    for (let k = 0; k < 6; k++) step(adamA, k);

    const b = makeVar();
    const adamB = new Adam({ p: b });
    for (let k = 0; k < 3; k++) step(adamB, k);
    const st = adamB.exportState();
    const file = join(dir, "adam.safetensors");
    writeSafetensors(file, { p: { shape: [3], data: b.dataSync() as Float32Array }, ...st.tensors }, { step: String(st.step) });

    const { tensors, metadata } = readSafetensors(file);
    const c = tf.variable(tf.tensor(tensors.p.data as Float32Array, [3]), true);
    const adamC = new Adam({ p: c });
    adamC.importState({ step: Number(metadata.step), tensors });
    for (let k = 3; k < 6; k++) step(adamC, k);
    expect(Array.from(c.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(Object.keys(st.tensors).sort()).toEqual(["exp_avg.p", "exp_avg_sq.p"]);
    [adamA, adamB, adamC].forEach((o) => o.dispose());
    [a, b, c].forEach((v) => v.dispose());
  });

  it("rejects gradients for unknown variables or with the wrong shape, and bad state", () => {
    const w = tf.variable(tf.zeros([2]), true);
    const adam = new Adam({ w });
    const g = tf.zeros([3]);
    expect(() => adam.applyGradients({ w: g })).toThrow(/"w" has shape \[3\]/);
    expect(() => adam.applyGradients({ other: g })).toThrow(/unknown variable "other"/);
    expect(() => adam.importState({ step: 1, tensors: {} })).toThrow(/missing tensor "exp_avg.w"/);
    g.dispose();
    adam.dispose();
    w.dispose();
  });
});
