import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SCALE_OPTIONS } from "./scale.js";
import { parseQualityArgs, QUALITY_SETTINGS, settingOptions } from "./quality.js";

describe("bench quality options", () => {
  it("defaults, the docs' invocation and the settings by folder name", () => {
    expect(parseQualityArgs([])).toMatchObject({
      settings: ["int8", "int4", "int4-b128"],
      tokens: 32,
      threads: cpus().length,
      cache: join(tmpdir(), "lm4lv-bench-quality"),
    });
    expect(parseQualityArgs([]).checkpoint).toMatch(/models[/\\]lm4lv-tiny[/\\]denoise$/);
    // docs/scale.md (suite name first, as pnpm bench passes it)
    expect(parseQualityArgs(["quality", "--settings=int8,int4,int4-b64,int4-b128", "--threads=1", "--cache=/tmp/q"])).toMatchObject({ settings: ["int8", "int4", "int4-b64", "int4-b128"], threads: 1, cache: "/tmp/q" });
    expect([...QUALITY_SETTINGS]).toEqual(["fp16", "int8", "int4", "int4-b64", "int4-b128"]);
    expect(QUALITY_SETTINGS.map(settingOptions)).toEqual([
      { quantize: "fp16" },
      { quantize: "int8" },
      { quantize: "int4" },
      { quantize: "int4", int4BlockSize: 64 },
      { quantize: "int4", int4BlockSize: 128 },
    ]);
  });

  it.each([
    [["--settings=int4-b96"], /--settings: expected settings among fp16, int8, int4, int4-b64, int4-b128, got "int4-b96"/],
    [["--settings=fp32"], /--settings: expected settings among .*, got "fp32"/],
    [["--tokens=0"], /--tokens: expected a positive integer, got 0/],
    [["--bogus"], /Unknown option '--bogus'/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseQualityArgs(argv as string[])).toThrow(message);
  });

  it("shares --threads with scale when both are named", () => {
    expect(parseQualityArgs(["scale", "quality", "--threads=2", "--keep"], [SCALE_OPTIONS]).threads).toBe(2);
  });
});
