import { cpus } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GENERATION_OPTIONS } from "./generation.js";
import { parseScaleArgs } from "./scale.js";

describe("bench scale options", () => {
  it("defaults and the docs' invocations", () => {
    expect(parseScaleArgs([])).toEqual({
      llm: "tinyllama-1.1b",
      mae: "vit-mae-base",
      quantize: ["int4", "int8"],
      int4BlockSize: undefined,
      dir: join(".cache", "scale"),
      threads: cpus().length,
      lmDecodeTokens: 16,
      keep: false,
    });
    // docs/scale.md (suite name first, as pnpm bench passes it)
    expect(parseScaleArgs(["scale", "--llm=llama2-7b", "--mae=vit-mae-large", "--quantize=int4,int8"])).toMatchObject({ llm: "llama2-7b", mae: "vit-mae-large", quantize: ["int4", "int8"] });
    expect(parseScaleArgs(["--quantize", "fp16", "--threads", "2", "--lm-decode-tokens=4", "--keep", "--dir=/tmp/s"])).toMatchObject({ quantize: ["fp16"], threads: 2, lmDecodeTokens: 4, keep: true, dir: "/tmp/s" });
    // docs/scale.md: the 7B int4 row with blocks of 128
    expect(parseScaleArgs(["scale", "--llm=llama2-7b", "--mae=vit-mae-large", "--quantize=int4", "--int4-block-size=128"])).toMatchObject({ quantize: ["int4"], int4BlockSize: 128 });
    expect(parseScaleArgs(["--quantize=int4,int8", "--int4-block-size", "64"]).int4BlockSize).toBe(64);
  });

  it.each([
    [["--bogus"], /Unknown option '--bogus'/],
    [["--llm=llama-70b"], /--llm: expected one of llama2-7b, tinyllama-1.1b, llama-tiny, got "llama-70b"/],
    [["--mae=llama2-7b"], /--mae: expected one of vit-mae-large, vit-mae-base, vit-mae-huge, vit-mae-tiny, got "llama2-7b"/],
    [["--quantize=int4,int3"], /--quantize: expected one of fp32, fp16, int8, int4, got "int3"/],
    [["--int4-block-size=96"], /--int4-block-size: expected one of 32, 64, 128, got 96/],
    [["--quantize=int8", "--int4-block-size=128"], /--int4-block-size: needs int4 in --quantize \(--quantize is int8\), got 128/],
    [["--threads=0"], /--threads: expected a positive integer, got 0/],
    [["--lm-decode-tokens", "lots"], /--lm-decode-tokens: expected a positive integer, got "lots"/],
    [["--against=/tmp/x"], /Unknown option '--against'/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseScaleArgs(argv as string[])).toThrow(message);
  });

  it("leaves the flags of other suites of the same run to them", () => {
    expect(parseScaleArgs(["scale", "generation", "--against=/tmp/x", "--keep"], [GENERATION_OPTIONS]).keep).toBe(true);
  });
});
