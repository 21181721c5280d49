import { describe, expect, it } from "vitest";
import { parseRandomLmArgs } from "./random-lm.js";

describe("random-lm arguments", () => {
  it("two folders and an optional seed (tools/train-embedded.sh passes 1234)", () => {
    expect(parseRandomLmArgs(["models/lm-wide", ".cache/models/lm-wide-random", "1234"])).toEqual({ src: "models/lm-wide", out: ".cache/models/lm-wide-random", seed: 1234 });
    expect(parseRandomLmArgs(["a", "b"])).toEqual({ src: "a", out: "b", seed: 1234 });
    expect(parseRandomLmArgs(["--help"])).toBeUndefined();
  });

  it.each([
    [["a"], /expected <trained-lm-dir> <out-dir> \[seed\], got 1 argument/],
    [["a", "b", "1", "2"], /got 4 argument/],
    [["a", "b", "x"], /<seed>: expected an integer, got "x"/],
    [["a", "b", "--seed", "3"], /Unknown option '--seed'/],
  ])("rejects %j", (argv, message) => {
    expect(() => parseRandomLmArgs(argv as string[])).toThrow(message);
  });
});
