import { describe, expect, it } from "vitest";
import { parseTestImagesOptions } from "./test-images.js";

describe("test-images options", () => {
  it("defaults and flags", () => {
    expect(parseTestImagesOptions([])).toMatchObject({ size: 64 });
    expect(parseTestImagesOptions(["--size", "128", "--cache", "c"])).toEqual({ cache: "c", size: 128 });
  });

  it.each([
    [["--sizes", "3"], /Unknown option '--sizes'/],
    [["--size", "-4"], /Option '--size' argument is ambiguous/],
    [["--size=-4"], /--size: expected a positive integer, got -4/],
    [["out"], /unexpected argument "out"/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseTestImagesOptions(argv as string[])).toThrow(message);
  });
});
