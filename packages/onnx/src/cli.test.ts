import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { LM4LVAdapters, saveAdapters } from "@lm4lv/adapters";
import { sourceFromDir } from "./export.js";
import { LLAMA_TINY, VIT_MAE_TINY } from "./test-helpers.js";

describe("export sources", () => {
  it("an LM4LV checkpoint folder names its MAE, LLM (relative to it) and adapters", () => {
    const dir = mkdtempSync(join(tmpdir(), "lm4lv-src-"));
    saveAdapters(dir, new LM4LVAdapters({ visionHidden: 48, llmHidden: 64 }), {
      visionModel: relative(dir, VIT_MAE_TINY), llm: LLAMA_TINY, task: "denoise", numVisualTokens: 65, step: 0,
    });
    expect(sourceFromDir(dir)).toEqual({ mae: VIT_MAE_TINY, llm: LLAMA_TINY, adapters: dir });
    expect(sourceFromDir(VIT_MAE_TINY)).toEqual({ mae: VIT_MAE_TINY });
    expect(sourceFromDir(LLAMA_TINY)).toEqual({ llm: LLAMA_TINY });
    expect(() => sourceFromDir(tmpdir())).toThrow(/neither a model folder/);
  });
});
