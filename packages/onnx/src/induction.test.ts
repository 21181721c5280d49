import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LM4LV, loadModels } from "@lm4lv/pipeline";
import { syntheticPhoto, writeTinyModels } from "@lm4lv/pipeline/testing";
import { inductionTest, lm4lvCopyScores } from "./induction.js";

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

describe("lm4lvCopyScores", () => {
  it("a tiled model scores every pair of tiles as its own sequence: the untiled model's scores of the four tile pairs", async () => {
    const dirs = writeTinyModels(mkdtempSync(join(tmpdir(), "lm4lv-copy-scores-")));
    const models = await loadModels({ mae: dirs.maeDir, llm: dirs.llmDir });
    const tiled = LM4LV.create(models, { seed: 3, tiles: 2 });
    const untiled = new LM4LV(models, tiled.adapters, tiled.task);
    const pair = { lq: syntheticPhoto(32, 1), hq: syntheticPhoto(32, 2) };
    const a = await lm4lvCopyScores(tiled, [pair]);
    const b = await lm4lvCopyScores(untiled, tiled.splitPairs([pair]));
    expect(a.heads.flat().length).toBeGreaterThan(0);
    a.heads.flat().forEach((s, i) => expect(s).toBeCloseTo(b.heads.flat()[i], 6));
    // the whole image in one untiled sequence is another measurement
    await expect(lm4lvCopyScores(untiled, [pair])).rejects.toThrow("this LM4LV restores 16×16");
  });
});
