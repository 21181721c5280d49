import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend, writeSafetensors } from "@lm4lv/core";
import type { TrainRng } from "@lm4lv/data";
import { ShuffledBatches } from "./data.js";
import { Trainer } from "./trainer.js";
import { CHECKPOINT_FORMAT, loadCheckpoint, transposeTensorData, upgradeCheckpoint } from "./checkpoint.js";
import type { FloatTensorData } from "./optimizer.js";

type Batch = { idx: number[]; noise: number };

describe("checkpoints written before TrainRng moved to @lm4lv/data", () => {
  let root: string;
  beforeAll(async () => {
    await initBackend("cpu");
    root = mkdtempSync(join(tmpdir(), "lm4lv-ckpt-"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("resume to the same RNG stream and data order (lm4lv-train/1 file from literals, values pinned)", () => {
    // The file as saveCheckpoint wrote it: F32 tensors, metadata strings; `state.rng` is the TrainRng
    // state [a, b, c, counter] as a JSON array (here: seed 12345 after 1000 draws).
    const path = join(root, "old.safetensors");
    writeSafetensors(
      path,
      {
        w: { shape: [], data: Float32Array.of(0.5), dtype: "F32" },
        "optimizer.exp_avg.w": { shape: [], data: Float32Array.of(0.01), dtype: "F32" },
        "optimizer.exp_avg_sq.w": { shape: [], data: Float32Array.of(0.0001), dtype: "F32" },
      },
      {
        format: "lm4lv-train/1",
        state: '{"step":7,"optimizerStep":7,"rng":[3326202298,3806226094,2261017393,1017],"data":{"epoch":1,"position":3},"bestMetric":null}',
        config: "null",
        history: '{"train":[],"validation":[]}',
      },
    );

    const w = tf.variable(tf.scalar(0), true);
    const data = new ShuffledBatches<Batch>({ size: 10, batchSize: 3, seed: 5, load: (idx: number[], rng: TrainRng) => ({ idx, noise: rng.normal() }) });
    const trainer = new Trainer<Batch>({ variables: { w }, loss: () => tf.scalar(0), data, totalSteps: 10, seed: 99, progress: false, handleSigint: false });
    trainer.restore(path);
    expect(trainer.step).toBe(7);
    expect(w.dataSync()[0]).toBe(0.5);

    // Drawn by @lm4lv/train's own TrainRng and ShuffledBatches before the move, from the same state.
    const batches = [data.next(trainer.rng), data.next(trainer.rng), data.next(trainer.rng)];
    expect(batches).toEqual([
      { idx: [3, 9, 6], noise: -1.050033403995404 },
      { idx: [1, 0, 7], noise: -0.29640195096145744 },
      { idx: [8, 9, 1], noise: 1.0873995340128584 },
    ]);
    expect(trainer.rng.getState()).toEqual([1741143212, 2314677976, 2795240141, 1023]);
    expect(data.getState()).toEqual({ epoch: 2, position: 3 });
    trainer.optimizer.dispose();
    w.dispose();
  });
});

describe("legacy checkpoints: names and layouts mapped once", () => {
  let root: string;
  beforeAll(async () => {
    await initBackend("cpu");
    root = mkdtempSync(join(tmpdir(), "lm4lv-ckpt-legacy-"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A Llama-style legacy tensor: `<module>.kernel` [in, out] → `<module>.weight` [out, in]. */
  const kernelToWeight = (name: string, t: FloatTensorData): [string, FloatTensorData] =>
    name.endsWith(".kernel") ? [name.replace(/\.kernel$/, ".weight"), transposeTensorData(t)] : [name, t];

  const STATE = '{"step":3,"optimizerStep":3,"rng":[1,2,3,0],"data":null,"bestMetric":null}';
  /** kernel [in 3, out 2] = [[1, 2], [3, 4], [5, 6]], i.e. W [out 2, in 3] = [[1, 3, 5], [2, 4, 6]]. */
  function writeFile(path: string, format: string, name: string, shape: number[]): void {
    const data = Float32Array.of(1, 2, 3, 4, 5, 6);
    writeSafetensors(
      path,
      {
        [name]: { shape, data, dtype: "F32" },
        "b": { shape: [2], data: Float32Array.of(7, 8), dtype: "F32" },
        [`optimizer.exp_avg.${name}`]: { shape, data: data.map((v) => v / 10), dtype: "F32" },
        [`optimizer.exp_avg_sq.${name}`]: { shape, data: data.map((v) => v / 100), dtype: "F32" },
        "optimizer.exp_avg.b": { shape: [2], data: Float32Array.of(0, 0), dtype: "F32" },
        "optimizer.exp_avg_sq.b": { shape: [2], data: Float32Array.of(0, 0), dtype: "F32" },
      },
      { format, state: STATE, config: "null", history: '{"train":[],"validation":[]}' },
    );
  }

  it("transposeTensorData swaps the axes", () => {
    expect(transposeTensorData({ shape: [3, 2], data: Float32Array.of(1, 2, 3, 4, 5, 6) })).toEqual({ shape: [2, 3], data: Float32Array.of(1, 3, 5, 2, 4, 6) });
    expect(() => transposeTensorData({ shape: [6], data: new Float32Array(6) })).toThrow(/not 2-D/);
  });

  it("a lm4lv-train/1 file is upgraded (variable and both moments); today's format is left alone", () => {
    const old = join(root, "old.safetensors");
    writeFile(old, "lm4lv-train/1", "proj.kernel", [3, 2]);
    const up = upgradeCheckpoint(loadCheckpoint(old), kernelToWeight);
    expect(up.format).toBe(CHECKPOINT_FORMAT);
    expect(Object.keys(up.variables).sort()).toEqual(["b", "proj.weight"]);
    expect(up.variables["proj.weight"]).toEqual({ shape: [2, 3], data: Float32Array.of(1, 3, 5, 2, 4, 6) });
    expect(up.optimizer["exp_avg.proj.weight"].data).toEqual(Float32Array.of(1, 3, 5, 2, 4, 6).map((v) => v / 10));
    expect(up.optimizer["exp_avg_sq.proj.weight"].shape).toEqual([2, 3]);
    expect(Object.keys(up.optimizer).sort()).toEqual(["exp_avg.b", "exp_avg.proj.weight", "exp_avg_sq.b", "exp_avg_sq.proj.weight"]);

    const now = join(root, "now.safetensors");
    writeFile(now, CHECKPOINT_FORMAT, "proj.kernel", [3, 2]);
    const same = loadCheckpoint(now);
    expect(upgradeCheckpoint(same, kernelToWeight)).toBe(same);
    writeFile(join(root, "bad.safetensors"), "lm4lv-train/0", "w", [3, 2]);
    expect(() => loadCheckpoint(join(root, "bad.safetensors"))).toThrow(/not a training checkpoint/);
  });

  it("the trainer restores a legacy file through upgradeLegacy into HF-layout variables and moments", () => {
    const old = join(root, "resume.safetensors");
    writeFile(old, "lm4lv-train/1", "proj.kernel", [3, 2]);
    const w = tf.variable(tf.zeros([2, 3]), true);
    const b = tf.variable(tf.zeros([2]), true);
    const make = (upgradeLegacy?: typeof kernelToWeight) =>
      new Trainer<number>({ variables: { "proj.weight": w, b }, loss: () => tf.scalar(0), data: () => 0, totalSteps: 5, progress: false, handleSigint: false, upgradeLegacy });
    const plain = make();
    expect(() => plain.restore(old)).toThrow(/missing: proj.weight; unexpected: proj.kernel/);
    plain.dispose();
    const trainer = make(kernelToWeight);
    trainer.restore(old);
    expect(trainer.step).toBe(3);
    expect(Array.from(w.dataSync())).toEqual([1, 3, 5, 2, 4, 6]);
    const moments = trainer.optimizer.exportState().tensors;
    expect(Array.from(moments["exp_avg_sq.proj.weight"].data)).toEqual([1, 3, 5, 2, 4, 6].map((v) => Math.fround(v / 100)));
    trainer.dispose();
    tf.dispose([w, b]);
  });
});
