import { describe, expect, it } from "vitest";
import { parseGenerationArgs } from "./generation.js";

describe("bench generation options", () => {
  it("defaults and flags (DEVELOPERS.md: pnpm bench generation --against=<checkout>)", () => {
    expect(parseGenerationArgs(["generation"])).toEqual({ against: [], runs: 5 });
    expect(parseGenerationArgs(["generation", "--against=/tmp/a", "--against", "/tmp/b", "--reps=2", "--runs", "3", "--threads=1"])).toEqual({
      against: ["/tmp/a", "/tmp/b"],
      reps: 2,
      runs: 3,
      threads: 1,
    });
  });

  it.each([
    [["--reps=0"], /--reps: expected a positive integer, got 0/],
    [["--runs=2.5"], /--runs: expected a positive integer, got 2.5/],
    [["--threads", "x"], /--threads: expected a positive integer, got "x"/],
    [["--llm=tiny"], /Unknown option '--llm'/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseGenerationArgs(argv as string[])).toThrow(message);
  });
});
