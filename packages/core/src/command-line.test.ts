import { describe, expect, it } from "vitest";
import { z } from "zod";
import { checkPositionals, numeric, parseCommandLine, usageText, UsageError } from "./command-line.js";
import { oneOf, positiveInt, positiveNumber } from "./config.js";

const SCHEMA = z.object({
  batchSize: positiveInt().default(8).describe("items per step"),
  lr: positiveNumber().optional().describe("learning rate"),
  keep: z.boolean().default(false).describe("keep the files"),
  baseline: z.boolean().default(true).describe("score the baseline too"),
  tag: z.array(z.string()).default([]),
  engine: oneOf(["ort", "tfjs"]).optional(),
  name: z.string().optional(),
});
const OTHER = z.object({ llm: z.string().optional() });

describe("numeric", () => {
  it("turns a number written as text into the number and leaves the rest", () => {
    expect([numeric("3e-4"), numeric(" 8"), numeric("x"), numeric(""), numeric("Infinity"), numeric(2), numeric(true)]).toEqual([3e-4, 8, "x", "", "Infinity", 2, true]);
  });
});

describe("parseCommandLine", () => {
  it("kebab-case flags, numbers from text, booleans (and --no-), repeatable arrays, positionals", () => {
    const r = parseCommandLine(["in", "--batch-size", "4", "--lr=1e-3", "--keep", "--no-baseline", "--tag", "a", "--tag=b"], SCHEMA);
    expect(r.options).toEqual({ batchSize: 4, lr: 1e-3, keep: true, baseline: false, tag: ["a", "b"] });
    expect(r.positionals).toEqual(["in"]);
    expect(r.help).toBe(false);
    expect(r.origin).toEqual({ batchSize: "--batch-size", lr: "--lr", keep: "--keep", baseline: "--no-baseline", tag: "--tag" });
    expect(parseCommandLine(["--", "--name", "x"], SCHEMA).options).toMatchObject({ batchSize: 8, keep: false, baseline: true, name: "x" });
    expect(parseCommandLine(["--help", "--batch-size", "x"], SCHEMA).help).toBe(true);
    expect(parseCommandLine(["-h"], SCHEMA).help).toBe(true);
  });

  it("names the flag (or the source) of every problem, all at once", () => {
    expect(() => parseCommandLine(["--batch"], SCHEMA)).toThrow(UsageError);
    expect(() => parseCommandLine(["--batch"], SCHEMA)).toThrow(/Unknown option '--batch'/);
    expect(() => parseCommandLine(["--batch-size", "0", "--engine", "gpu"], SCHEMA)).toThrow('--batch-size: expected a positive integer, got 0; --engine: expected one of ort, tfjs, got "gpu"');
    expect(() => parseCommandLine(["--batch-size", "many"], SCHEMA)).toThrow('--batch-size: expected a positive integer, got "many"');
    expect(() => parseCommandLine(["--keep=yes"], SCHEMA)).toThrow(/--keep' does not take an argument/);
    const list = z.object({ tasks: z.array(oneOf(["a", "b"])).default([]) });
    expect(() => parseCommandLine(["--tasks", "a", "--tasks", "c"], list)).toThrow('--tasks: expected one of a, b, got "c"');
    expect(() => parseCommandLine([], SCHEMA, { fallback: { engine: { value: "cuda", from: "LM4LV_ENGINE" } } })).toThrow('LM4LV_ENGINE: expected one of ort, tfjs, got "cuda"');
  });

  it("checks the number of positionals against the usage's", () => {
    expect(parseCommandLine(["a", "b"], SCHEMA, { positionals: "<gt> <pred>" }).positionals).toEqual(["a", "b"]);
    expect(() => parseCommandLine(["a"], SCHEMA, { positionals: "<gt> <pred>" })).toThrow("expected <gt> <pred>, got 1 argument(s)");
    expect(() => parseCommandLine(["a"], SCHEMA, { positionals: "" })).toThrow('unexpected argument "a"');
    expect(() => checkPositionals(["a", "b", "c", "d"], "<src> <out> [seed]")).toThrow("expected <src> <out> [seed], got 4 argument(s)");
    expect(() => checkPositionals(["a", "b", "c", "d"], "<src> <more>...")).not.toThrow();
  });

  it("accepts the flags of the allowed schemas and leaves them to them", () => {
    expect(parseCommandLine(["--llm", "tiny", "--keep"], SCHEMA, { allow: [OTHER] }).options).toMatchObject({ keep: true });
    expect(() => parseCommandLine(["--llm", "tiny"], SCHEMA)).toThrow(/Unknown option '--llm'/);
  });

  it("defaults < fallback < config file < flags, each problem naming its source", () => {
    const files: Record<string, unknown> = { "run.yaml": { "batch-size": "3", keep: true, engine: "tfjs" }, "bad.yaml": { batchSize: 0 }, "odd.yaml": { learningRate: 1 }, "list.yaml": [1] };
    const config = (file: string) => files[file];
    const r = parseCommandLine(["--config", "run.yaml", "--engine", "ort"], SCHEMA, { config, fallback: { engine: { value: "tfjs", from: "ENV" }, lr: { value: "2e-3", from: "ENV" } } });
    expect(r.options).toMatchObject({ batchSize: 3, keep: true, engine: "ort", lr: 2e-3 });
    expect(r.origin).toMatchObject({ batchSize: "run.yaml: batch-size", engine: "--engine", lr: "ENV" });
    expect(() => parseCommandLine(["--config", "bad.yaml"], SCHEMA, { config })).toThrow("bad.yaml: batchSize: expected a positive integer, got 0");
    expect(() => parseCommandLine(["--config", "odd.yaml"], SCHEMA, { config })).toThrow('odd.yaml: unknown option "learningRate"');
    expect(() => parseCommandLine(["--config", "list.yaml"], SCHEMA, { config })).toThrow("list.yaml: expected a mapping of options");
    expect(() => parseCommandLine(["--config", "run.yaml"], SCHEMA)).toThrow(/Unknown option '--config'/);
  });

  it("a usage error carries the usage when one was given; options under a transform are found", () => {
    try {
      parseCommandLine(["--bogus"], SCHEMA, { usage: "usage: x" });
      expect.unreachable();
    } catch (e) {
      expect((e as UsageError).usage).toMatch(/^usage: x\n\noptions:\n {2}--batch-size <integer>/);
    }
    const piped = z.object({ n: positiveInt() }).transform((o) => ({ twice: o.n * 2 }));
    expect(parseCommandLine(["--n", "2"], piped).options).toEqual({ twice: 4 });
  });
});

describe("usageText", () => {
  it("lists each flag with its kind, description and default", () => {
    const text = usageText("usage: x [options]", SCHEMA);
    expect(text).toMatch(/--batch-size <integer> +items per step \(default 8\)/);
    expect(text).toMatch(/--lr <number> +learning rate$/m);
    expect(text).toMatch(/--keep +keep the files \(default false\)/);
    expect(text).toMatch(/--no-baseline +score the baseline too$/m);
    expect(text).toMatch(/--tag <string>\.\.\.$/m);
    expect(text).toMatch(/--engine <ort\|tfjs>/);
    expect(text).toMatch(/-h, --help +show this help/);
    expect(usageText("", SCHEMA, { title: "options (YAML):", help: false })).not.toMatch(/--help|usage/);
  });
});
