import { describe, expect, it } from "vitest";
import { parseRandomHfArgs } from "./random-hf.js";

describe("random-hf arguments", () => {
  it("preset, folder and options", () => {
    expect(parseRandomHfArgs(["llama2-7b", "out"])).toEqual({ preset: "llama2-7b", out: "out", options: { dtype: "F16" } });
    expect(parseRandomHfArgs(["vit-mae-tiny", "o", "--seed", "3", "--dtype", "bf16", "--shard-size=1000", "--layers", "2"])).toEqual({
      preset: "vit-mae-tiny",
      out: "o",
      options: { seed: 3, dtype: "BF16", shardSize: 1000, layers: 2 },
    });
  });

  it.each([
    [["llama2-7b"], /expected <preset> <out-dir>, got 1 argument/],
    [["gpt-2", "o"], /<preset>: unknown preset "gpt-2"/],
    [["llama2-7b", "o", "--dtype", "f8"], /--dtype: expected one of F16, BF16, F32, got "F8"/],
    [["llama2-7b", "o", "--layers", "0"], /--layers: expected a positive integer, got 0/],
    [["llama2-7b", "o", "--seed=-1"], /--seed: expected an integer >= 0, got -1/],
    [["llama2-7b", "o", "--shards", "2"], /Unknown option '--shards'/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseRandomHfArgs(argv as string[])).toThrow(message);
  });
});
