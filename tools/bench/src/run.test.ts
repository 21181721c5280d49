import { describe, expect, it } from "vitest";
import { parseBenchArgs } from "./run.js";

describe("pnpm bench arguments", () => {
  it("suites: the default set, named ones, opt-in ones", () => {
    expect(parseBenchArgs([])).toEqual(["core", "mae", "llm", "lm4lv", "onnx", "train"]);
    expect(parseBenchArgs(["onnx", "train"])).toEqual(["onnx", "train"]);
    expect(parseBenchArgs(["scale", "--llm=llama2-7b", "--mae=vit-mae-large", "--quantize=int4", "--dir=/work/scale", "--keep"])).toEqual(["scale"]);
    expect(parseBenchArgs(["generation", "--against=/tmp/before"])).toEqual(["generation"]);
    expect(parseBenchArgs(["lm4lv", "--runs=2"])).toEqual(["lm4lv"]);
    expect(parseBenchArgs(["quality", "--settings=int4,int4-b128", "--threads=1"])).toEqual(["quality"]);
    expect(parseBenchArgs(["--help"])).toBeUndefined();
  });

  it.each([
    [["gpu"], /unknown bench suite "gpu"/],
    [["core", "--llm=llama2-7b"], /Unknown option '--llm'/],
    [["scale", "--against=/tmp/x"], /Unknown option '--against'/],
    [["--bogus"], /Unknown option '--bogus'/],
    [["scale", "--threads=0"], /--threads: expected a positive integer, got 0/],
    [["generation", "--reps", "x"], /--reps: expected a positive integer, got "x"/],
    [["quality", "--settings=int4-b256"], /--settings: expected settings among/],
    [["core", "--settings=int4"], /Unknown option '--settings'/],
  ])("rejects %j before running anything", (argv, message) => {
    expect(() => parseBenchArgs(argv as string[])).toThrow(message);
  });
});
