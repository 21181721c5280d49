import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./common.js";
import { parsePhotosOptions } from "./photos.js";

describe("photos options", () => {
  it("defaults, flags and the `--` pnpm passes on", () => {
    expect(parsePhotosOptions([])).toEqual({
      cache: join(repoRoot(), ".cache/data"),
      seed: 1234,
      size: 64,
      cropsPerImage: 64,
      valFraction: 0.1,
      minScale: 128,
      maxScale: 256,
    });
    // tools/train-embedded.sh: pnpm --filter @lm4lv/data-tools photos -- --crops-per-image 400
    expect(parsePhotosOptions(["--", "--crops-per-image", "400"])).toMatchObject({ cropsPerImage: 400, size: 64 });
    expect(parsePhotosOptions(["--cache", "/tmp/c", "--seed=-3", "--val-fraction", "0.25", "--size", "32"])).toMatchObject({ cache: "/tmp/c", seed: -3, valFraction: 0.25, size: 32 });
    expect(parsePhotosOptions(["--help"])).toBeUndefined();
  });

  it.each([
    [["--bogus"], /Unknown option '--bogus'/],
    [["--crops-per-image", "many"], /--crops-per-image: expected a positive integer, got "many"/],
    [["--size", "0"], /--size: expected a positive integer, got 0/],
    [["--seed", "1.5"], /--seed: expected an integer, got 1.5/],
    [["--val-fraction", "2"], /--val-fraction: expected a number in \[0, 1\], got 2/],
    [["--min-scale"], /--min-scale <value>' argument missing/],
    [["extra"], /unexpected argument "extra"/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parsePhotosOptions(argv as string[])).toThrow(message);
  });
});
