import { describe, expect, it } from "vitest";
import { ADAPTERS_ONLY_TRAINING_OPTIONS, trainAdaptersOnly } from "./adapters-only.js";
import { LM4LV_TRAINING_OPTIONS, trainLM4LV } from "./lm4lv-training.js";
import type { LM4LV } from "./lm4lv.js";

describe("training hyperparameters (one default each, validated by name)", () => {
  it("LM4LV defaults follow spec §7 (Adam lr 3e-4, clipping 1.0); the adapters-only ablation has its own", () => {
    const h = LM4LV_TRAINING_OPTIONS.parse({ steps: 10 });
    expect(h).toEqual({ steps: 10, batchSize: 4, gradAccum: 1, lr: 3e-4, clipNorm: 1, seed: 0, checkpointEvery: 50, validateEvery: 0, valCount: 4, resume: false, engine: "tfjs", inputNoise: 0, saveDtype: "F32" });
    expect(LM4LV_TRAINING_OPTIONS.parse({ steps: 10, saveDtype: "F16" }).saveDtype).toBe("F16");
    expect(LM4LV_TRAINING_OPTIONS.safeParse({ steps: 10, saveDtype: "BF16" }).success).toBe(false);
    expect(ADAPTERS_ONLY_TRAINING_OPTIONS.parse({ steps: 10 })).toEqual({ steps: 10, batchSize: 8, lr: 3e-3, seed: 0, resume: false });
  });

  it("trainLM4LV and trainAdaptersOnly reject bad values before doing anything, naming each option", async () => {
    const model = undefined as unknown as LM4LV; // never reached
    const train = { length: 1, get: async () => { throw new Error("never read"); } };
    await expect(trainLM4LV({ model, train, outDir: "/nonexistent/x", steps: 0, lr: -1, engine: "gpu" as "ort" })).rejects.toThrow(
      'trainLM4LV: steps: expected a positive integer, got 0; trainLM4LV: lr: expected a positive number, got -1; trainLM4LV: engine: expected one of ort, tfjs, got "gpu"',
    );
    await expect(trainAdaptersOnly({ model, train, outDir: "/nonexistent/x", steps: 2, batchSize: 1.5 })).rejects.toThrow("trainAdaptersOnly: batchSize: expected a positive integer, got 1.5");
  });
});
