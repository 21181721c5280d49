import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseCopyProbeArgs } from "./copy-probe.js";

describe("copy-probe options", () => {
  it("defaults and flags (docs/results.md: --checkpoint <identity checkpoint>)", () => {
    const o = parseCopyProbeArgs([])!;
    expect(o.checkpoint.endsWith(join("models", "lm4lv-tiny", "identity"))).toBe(true);
    expect(o).toMatchObject({ fitCount: 150, lambda: 1e-4 });
    expect(parseCopyProbeArgs(["--checkpoint", "ck", "--fit", "f", "--val", "v", "--fit-count", "20", "--lambda", "1e-3"])).toEqual({ checkpoint: "ck", fit: "f", val: "v", fitCount: 20, lambda: 1e-3 });
  });

  it.each([
    [["--fit-count", "0"], /--fit-count: expected a positive integer, got 0/],
    [["--lambda", "small"], /--lambda: expected a number >= 0, got "small"/],
    [["--checkpoints", "x"], /Unknown option '--checkpoints'/],
    [["ckpt"], /unexpected argument "ckpt"/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseCopyProbeArgs(argv as string[])).toThrow(message);
  });
});
