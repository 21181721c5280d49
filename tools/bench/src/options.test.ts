import { describe, expect, it } from "vitest";
import { z } from "zod";
import { positiveInt } from "@lm4lv/core";
import { commaList, intFlag, isMain, parseCommandLine, usageText } from "./options.js";

const SCHEMA = z.object({
  batchSize: intFlag(positiveInt()).default(8).describe("items per step"),
  keep: z.boolean().default(false).describe("keep the files"),
  against: z.array(z.string()).default([]),
  tasks: commaList().default(["a"]),
});
const OTHER = z.object({ llm: z.string().optional() });

describe("parseCommandLine", () => {
  it("kebab-case flags, booleans without value, repeatable arrays, comma lists, positionals", () => {
    expect(parseCommandLine(["scale", "--batch-size=4", "--keep", "--against", "x", "--against=y", "--tasks", "b, c,"], SCHEMA)).toEqual({
      options: { batchSize: 4, keep: true, against: ["x", "y"], tasks: ["b", "c"] },
      positionals: ["scale"],
      help: false,
    });
    expect(parseCommandLine(["--", "--keep"], SCHEMA).options).toMatchObject({ keep: true, batchSize: 8, tasks: ["a"] });
    expect(parseCommandLine(["-h", "--batch-size", "x"], SCHEMA).help).toBe(true);
  });

  it("accepts the flags of the allowed schemas and leaves them to them", () => {
    expect(parseCommandLine(["--llm", "tiny", "--keep"], SCHEMA, { allow: [OTHER] }).options).toMatchObject({ keep: true });
    expect(() => parseCommandLine(["--llm", "tiny"], SCHEMA)).toThrow(/Unknown option '--llm'/);
  });

  it("names the flag of every problem", () => {
    expect(() => parseCommandLine(["--batch-size", "0"], SCHEMA)).toThrow("--batch-size: expected a positive integer, got 0");
    expect(() => parseCommandLine(["--batch-size", "many"], SCHEMA)).toThrow('--batch-size: expected a positive integer, got "many"');
    expect(() => parseCommandLine(["--tasks", ","], SCHEMA)).toThrow("--tasks: expected a comma-separated list");
    expect(() => parseCommandLine(["--keep=yes"], SCHEMA)).toThrow(/--keep' does not take an argument/);
  });

  it("usage lists each flag with its default; isMain goes by the script's file name", () => {
    const text = usageText("usage: x", SCHEMA);
    expect(text).toMatch(/--batch-size <value> +items per step \(default 8\)/);
    expect(text).toMatch(/--keep +keep the files \(default false\)/);
    expect(isMain("forks")).toBe(true); // vitest's worker
    expect(isMain("scale")).toBe(false);
  });
});
