import { describe, expect, it } from "vitest";
import { parseFeatureSubspaceArgs } from "./feature-subspace.js";

describe("feature-subspace options", () => {
  it("defaults and flags", () => {
    expect(parseFeatureSubspaceArgs([])!.train).toMatch(/\.cache\/data\/crops\/train$/);
    expect(parseFeatureSubspaceArgs(["--checkpoint=c", "--train", "t", "--val", "v"])).toEqual({ checkpoint: "c", train: "t", val: "v" });
  });

  it.each([
    [["--k", "8"], /Unknown option '--k'/],
    [["--val"], /--val <value>' argument missing/],
    [["dir"], /unexpected argument "dir"/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseFeatureSubspaceArgs(argv as string[])).toThrow(message);
  });
});
