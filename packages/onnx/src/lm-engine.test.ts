/**
 * `ortLmGradients` as the text LM's gradient engine: the first step losses of a run on ONNX
 * Runtime match tfjs autodiff of `lmLoss` (a GQA model with tied embeddings).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM, lmLoss, tokenWindowBatches } from "@lm4lv/llm";
import type { EmbeddingNoise, TokenBatch } from "@lm4lv/llm";
import { runTraining } from "@lm4lv/train";
import { ortLmGradients } from "./train-llama.js";

beforeAll(async () => {
  await initBackend("cpu");
});

describe("ortLmGradients", () => {
  const tokens = Int32Array.from({ length: 400 }, (_, i) => (i * 7919 + (i >> 3)) % 97);
  const run = async (engine: "ort" | "tfjs", embeddingNoise?: EmbeddingNoise) => {
    const model = LlamaForCausalLM.fromConfig({ vocab_size: 97, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: true }, 3);
    const variables = model.trainableParameters();
    const ort = engine === "ort" ? await ortLmGradients(model, variables, { threads: 1, embeddingNoise }) : undefined;
    const r = await runTraining<TokenBatch>({
      variables,
      ...(ort ? { gradients: ort.gradients } : { loss: (b: TokenBatch) => lmLoss(model, b, embeddingNoise) }),
      data: tokenWindowBatches(tokens, { batchSize: 4, seqLen: 16 }),
      totalSteps: 4,
      optimizer: { lr: 1e-2 },
      schedule: { kind: "constant" },
      progress: false,
      handleSigint: false,
    });
    await ort?.release();
    model.dispose();
    return r.history.map((h) => h.loss);
  };
  it("the first 4 step losses match tfjs (GQA model, tied embeddings)", async () => {
    const [tfjs, ort] = [await run("tfjs"), await run("ort")];
    expect(ort).toHaveLength(4);
    tfjs.forEach((l, i) => expect(Math.abs(ort[i] - l) / l, `step ${i + 1}`).toBeLessThan(1e-3));
    expect(new Set(ort).size).toBeGreaterThan(1); // it trains
  });

  it("input-embedding noise: ORT's step losses match tfjs's with the same draws, and differ from the clean run", async () => {
    const noise = { alpha: 0.5, seed: 11 };
    const [tfjs, ort, clean] = [await run("tfjs", noise), await run("ort", noise), await run("ort")];
    tfjs.forEach((l, i) => expect(Math.abs(ort[i] - l) / l, `step ${i + 1}`).toBeLessThan(1e-3));
    clean.forEach((l, i) => expect(Math.abs(ort[i] - l), `step ${i + 1}`).toBeGreaterThan(1e-3));
  });
});
