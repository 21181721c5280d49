import { describe, expect, it } from "vitest";
import { parseTextOptions } from "./text.js";

describe("text options", () => {
  it("defaults and flags", () => {
    expect(parseTextOptions([])).toMatchObject({ seed: 1234, valFraction: 0.05 });
    expect(parseTextOptions(["--seed", "7", "--val-fraction=0", "--cache", "c"])).toEqual({ cache: "c", seed: 7, valFraction: 0 });
    expect(parseTextOptions(["-h"])).toBeUndefined();
  });

  it.each([
    [["--frob"], /Unknown option '--frob'/],
    [["--seed", "x"], /--seed: expected an integer, got "x"/],
    [["--val-fraction", "half"], /--val-fraction: expected a number in \[0, 1\], got "half"/],
    [["--cache"], /--cache <value>' argument missing/],
    [["corpus.txt"], /unexpected argument "corpus.txt"/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseTextOptions(argv as string[])).toThrow(message);
  });
});
