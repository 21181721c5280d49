import { describe, expect, it } from "vitest";
import { z } from "zod";
import { commaList, isMain, parseCommandLine } from "./options.js";

const SCHEMA = z.object({ tasks: commaList().default(["a"]) });

describe("bench options (core's parseCommandLine)", () => {
  it("a comma list flag gives its non-empty items and names the flag when there are none", () => {
    expect(parseCommandLine(["--tasks", "b, c,"], SCHEMA).options).toEqual({ tasks: ["b", "c"] });
    expect(parseCommandLine([], SCHEMA).options).toEqual({ tasks: ["a"] });
    expect(() => parseCommandLine(["--tasks", ","], SCHEMA)).toThrow("--tasks: expected a comma-separated list");
  });

  it("isMain goes by the script's file name", () => {
    expect(isMain("forks")).toBe(true); // vitest's worker
    expect(isMain("scale")).toBe(false);
  });
});
