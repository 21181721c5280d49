import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { LM4LVAdapters, saveAdapters } from "@lm4lv/adapters";
import { sourceFromDir } from "./export.js";
import { parseExportArgs } from "./cli.js";
import { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";
import { VIT_MAE_TINY_DIR as VIT_MAE_TINY } from "@lm4lv/mae/testing";

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

describe("export-onnx options", () => {
  it("paths, defaults and flags", () => {
    expect(parseExportArgs(["ckpt", "out"])).toEqual({ src: "ckpt", out: "out", quantize: "fp32", int4BlockSize: undefined, externalAbove: undefined });
    expect(parseExportArgs(["ckpt", "out", "--quantize", "int4", "--external-above=1024"])).toEqual({ src: "ckpt", out: "out", quantize: "int4", int4BlockSize: undefined, externalAbove: 1024 });
    expect(parseExportArgs(["ckpt", "out", "--quantize", "int4", "--int4-block-size", "128"])).toMatchObject({ quantize: "int4", int4BlockSize: 128 });
    expect(parseExportArgs(["ckpt", "out", "--quantize=int4", "--int4-block-size=64"])).toMatchObject({ quantize: "int4", int4BlockSize: 64 });
    expect(parseExportArgs(["ckpt", "out", "--quantize=int4", "--int4-block-size=32"])).toMatchObject({ quantize: "int4", int4BlockSize: 32 });
    expect(parseExportArgs(["--help"])).toBeUndefined();
  });

  it.each([
    [["ckpt", "out", "--bogus"], /Unknown option '--bogus'/],
    [["ckpt", "out", "--quantize", "int3"], /--quantize: expected one of fp32, fp16, int8, int4, got "int3"/],
    [["ckpt", "out", "--external-above", "lots"], /--external-above: expected a byte count >= 0, got "lots"/],
    [["ckpt", "out", "--external-above=-1"], /--external-above: expected a byte count >= 0, got -1/],
    [["ckpt", "out", "--quantize"], /--quantize <value>' argument missing/],
    [["ckpt", "out", "--quantize", "int3", "--external-above", "lots"], /--quantize: expected one of .*; --external-above: expected a byte count >= 0/],
    [["ckpt", "out", "--quantize", "int4", "--int4-block-size", "48"], /--int4-block-size: expected one of 32, 64, 128, got 48/],
    [["ckpt", "out", "--quantize", "int4", "--int4-block-size", "big"], /--int4-block-size: expected one of 32, 64, 128, got "big"/],
    [["ckpt", "out", "--quantize", "int8", "--int4-block-size", "128"], /--int4-block-size: only with --quantize int4 \(--quantize is int8\), got 128/],
    [["ckpt", "out", "--int4-block-size", "64"], /--int4-block-size: only with --quantize int4 \(--quantize is fp32\), got 64/],
    [["ckpt"], /expected <checkpoint-or-model-dir> <out-dir>, got 1 argument/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseExportArgs(argv as string[])).toThrow(message);
  });
});
