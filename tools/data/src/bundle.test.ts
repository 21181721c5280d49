import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseBundleOptions } from "./bundle.js";
import { repoRoot } from "./common.js";

describe("bundle options", () => {
  it("defaults and flags", () => {
    expect(parseBundleOptions([])).toEqual({ perPhoto: 10, cache: join(repoRoot(), ".cache/data"), out: join(repoRoot(), "assets/train-images") });
    expect(parseBundleOptions(["--per-photo", "3", "--out", "o"])).toMatchObject({ perPhoto: 3, out: "o" });
  });

  it.each([
    [["--per-photos", "3"], /Unknown option '--per-photos'/],
    [["--per-photo", "three"], /--per-photo: expected a positive integer, got "three"/],
    [["--out"], /--out <value>' argument missing/],
    [["dir"], /unexpected argument "dir"/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseBundleOptions(argv as string[])).toThrow(message);
  });
});
