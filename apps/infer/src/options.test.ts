import { describe, expect, it } from "vitest";
import { UsageError } from "@lm4lv/core";
import { parseInferOptions } from "./options.js";

describe("pnpm infer options (one zod schema)", () => {
  it("types the flags, fills the defaults, takes the engine from LM4LV_ENGINE unless --engine is given", () => {
    const { options: o, positionals } = parseInferOptions(["--threads", "2", "--quantize", "int8", "--no-mae-baseline", "in.png"], {});
    const threads: number | undefined = o.threads; // typed by the schema
    expect(threads).toBe(2);
    expect(o).toEqual({ task: "denoise", out: "out/infer", json: false, threads: 2, quantize: "int8", lowMemory: false, maeBaseline: false });
    expect(parseInferOptions(["--low-memory"], {}).options.lowMemory).toBe(true);
    expect(parseInferOptions(["--quantize", "int4", "--int4-block-size", "128"], {}).options).toMatchObject({ quantize: "int4", int4BlockSize: 128 });
    expect(parseInferOptions(["--quantize=int4", "--int4-block-size=64"], {}).options.int4BlockSize).toBe(64);
    expect(parseInferOptions(["--quantize", "int4"], {}).options.int4BlockSize).toBeUndefined(); // the export's default, 32
    expect(positionals).toEqual(["in.png"]);
    expect(parseInferOptions([], { LM4LV_ENGINE: "tfjs" }).options.engine).toBe("tfjs");
    expect(parseInferOptions(["--engine", "ort"], { LM4LV_ENGINE: "tfjs" }).options.engine).toBe("ort");
    expect(parseInferOptions(["--help"], { LM4LV_ENGINE: "bogus" }).help).toBe(true);
  });

  it("names the flag (or LM4LV_ENGINE) of every bad value", () => {
    expect(() => parseInferOptions(["--threads", "x"], {})).toThrow(UsageError);
    expect(() => parseInferOptions(["--threads", "0", "--engine", "gpu"], {})).toThrow('--engine: expected one of ort, tfjs, got "gpu"; --threads: expected a positive integer, got 0');
    expect(() => parseInferOptions([], { LM4LV_ENGINE: "cuda" })).toThrow('LM4LV_ENGINE: expected one of ort, tfjs, got "cuda"');
    expect(() => parseInferOptions(["--quantize", "int3"], {})).toThrow('--quantize: expected one of fp32, fp16, int8, int4, got "int3"');
    expect(() => parseInferOptions(["--quantize", "int4", "--engine", "tfjs"], {})).toThrow('--quantize: needs the ONNX Runtime engine (--engine ort); tfjs runs fp32 weights, got "int4"');
    expect(() => parseInferOptions(["--quantize", "int4"], { LM4LV_ENGINE: "tfjs" })).toThrow(/--quantize: needs the ONNX Runtime engine/);
    expect(() => parseInferOptions(["--quantize", "int4", "--int4-block-size", "256"], {})).toThrow("--int4-block-size: expected one of 32, 64, 128, got 256");
    expect(() => parseInferOptions(["--quantize", "int8", "--int4-block-size", "128"], {})).toThrow("--int4-block-size: only with --quantize int4 (--quantize is int8), got 128");
    expect(() => parseInferOptions(["--int4-block-size", "64"], {})).toThrow("--int4-block-size: only with --quantize int4 (no --quantize given), got 64");
    expect(() => parseInferOptions(["--bogus"], {})).toThrow(/bogus/);
    expect(() => parseInferOptions(["a.png", "b.png"], {})).toThrow("expected [<image|folder|pairs.json>], got 2 argument(s)");
  });
});
