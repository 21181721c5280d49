import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { WEIGHT_FORMATS, ortAvailable } from "./available.js";
import { parseWeightFormat } from "./export.js";

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

  it("reports whether onnxruntime-node loads (it does wherever these tests run)", async () => {
    expect(await ortAvailable()).toBe(true);
  });
});
