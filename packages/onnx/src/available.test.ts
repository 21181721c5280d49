import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { DEFAULT_INT4_BLOCK_SIZE, INT4_BLOCK_SIZES, WEIGHT_FORMATS, ortAvailable, weightSettingName } from "./available.js";
import { parseInt4BlockSize, parseWeightFormat } from "./export.js";

describe("@lm4lv/onnx/available (what apps check before loading onnxruntime-node)", () => {
  it("imports nothing, so checking options and choosing an engine does not load onnxruntime-node", () => {
    const src = readFileSync(new URL("./available.ts", import.meta.url), "utf8");
    expect(src.match(/^\s*(import|export)\s[^(]*\sfrom\s/gm)).toBeNull();
  });

  it("lists the weight formats the exporter accepts", () => {
    expect([...WEIGHT_FORMATS]).toEqual(["fp32", "fp16", "int8", "int4"]);
    for (const f of WEIGHT_FORMATS) expect(parseWeightFormat(f)).toBe(f);
    expect(() => parseWeightFormat("int2")).toThrow('quantize: expected one of fp32, fp16, int8, int4, got "int2"');
  });

  it("lists the int4 block sizes and names each weight setting as its export folder", () => {
    expect([[...INT4_BLOCK_SIZES], DEFAULT_INT4_BLOCK_SIZE]).toEqual([[32, 64, 128], 32]);
    for (const b of INT4_BLOCK_SIZES) expect(parseInt4BlockSize(b)).toBe(b);
    expect(() => parseInt4BlockSize(96, "--int4-block-size")).toThrow("--int4-block-size: expected one of 32, 64, 128, got 96");
    expect(WEIGHT_FORMATS.map((f) => weightSettingName(f))).toEqual(["fp32", "fp16", "int8", "int4"]);
    expect(INT4_BLOCK_SIZES.map((b) => weightSettingName("int4", b))).toEqual(["int4", "int4-b64", "int4-b128"]);
  });

  it("reports whether onnxruntime-node loads (it does wherever these tests run)", async () => {
    expect(await ortAvailable()).toBe(true);
  });
});
