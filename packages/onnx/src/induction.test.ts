import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { inductionTest } from "./induction.js";

beforeAll(async () => {
  await initBackend();
});

describe("inductionTest", () => {
  it("scores each head in [0, 1]; an untrained LM does not copy", async () => {
    const lm = LlamaForCausalLM.fromConfig({ vocab_size: 300, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: true }, 4);
    const r = await inductionTest(lm, { length: 12, batch: 3, seed: 1, bosId: 1 });
    expect(r.heads.length).toBe(2);
    expect(r.heads.every((row) => row.length === 4 && row.every((v) => v >= 0 && v <= 1))).toBe(true);
    expect(r.best.score).toBe(Math.max(...r.heads.flat()));
    // an untrained LM cannot copy: both copies near ln V
    expect(Math.abs(r.firstCopyLoss - r.uniformLoss)).toBeLessThan(0.5);
    expect(Math.abs(r.secondCopyLoss - r.firstCopyLoss)).toBeLessThan(0.5);
    expect(r.uniformLoss).toBeCloseTo(Math.log(300), 10);
    lm.dispose();
  });
});
