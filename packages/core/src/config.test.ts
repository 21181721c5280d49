import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError, oneOf, positiveInt, positiveNumber, readConfig, validateConfig } from "./config.js";

const schema = z.looseObject({
  hidden_size: positiveInt(),
  layer_norm_eps: positiveNumber().default(1e-12),
  qkv_bias: z.boolean().default(true),
  rope_scaling: z.looseObject({ factor: positiveNumber() }).nullable().default(null),
  hidden_act: oneOf(["gelu", "relu"]).default("gelu"),
});

describe("readConfig", () => {
  const dir = mkdtempSync(join(tmpdir(), "cfg-"));
  const file = join(dir, "config.json");
  it("fills defaults, keeps unknown fields and returns the schema's type", () => {
    writeFileSync(file, JSON.stringify({ hidden_size: 8, model_type: "x" }));
    const c = readConfig(dir, schema);
    const width: number = c.hidden_size; // typed by the schema
    expect(width).toBe(8);
    expect(c).toEqual({ hidden_size: 8, model_type: "x", layer_norm_eps: 1e-12, qkv_bias: true, rope_scaling: null, hidden_act: "gelu" });
  });

  it("names the file and every bad field with the value found", () => {
    writeFileSync(file, JSON.stringify({ hidden_size: "abc", qkv_bias: "yes" }));
    expect(() => readConfig(dir, schema)).toThrow(ConfigError);
    expect(() => readConfig(dir, schema)).toThrow(`${file}: hidden_size: expected a positive integer, got "abc"; qkv_bias: expected true or false, got "yes"`);
    writeFileSync(file, JSON.stringify({ hidden_size: 2.5 }));
    expect(() => readConfig(dir, schema)).toThrow(/config\.json: hidden_size: expected a positive integer, got 2\.5$/);
    writeFileSync(file, JSON.stringify({ hidden_size: 0 }));
    expect(() => readConfig(dir, schema)).toThrow(/hidden_size: expected a positive integer, got 0$/);
    writeFileSync(file, JSON.stringify({ hidden_size: 4, rope_scaling: { factor: -2 }, hidden_act: "swish" }));
    expect(() => readConfig(dir, schema)).toThrow(/rope_scaling\.factor: expected a positive number, got -2; hidden_act: expected one of gelu, relu, got "swish"/);
    writeFileSync(file, "{}");
    expect(() => readConfig(dir, schema)).toThrow(/config\.json: hidden_size: missing \(expected a positive integer\)/);
    writeFileSync(file, "{not json");
    expect(() => readConfig(dir, schema)).toThrow(/config\.json: not valid JSON/);
    writeFileSync(file, "[1]");
    expect(() => readConfig(dir, schema)).toThrow(/config\.json: expected a JSON object/);
    expect(() => readConfig(join(dir, "nope"), schema)).toThrow(/nope: file not found/);
  });
});

describe("validateConfig", () => {
  it("words problems no schema customised, paths with list indices, and a custom error class", () => {
    class MyError extends Error {}
    const s = z.object({ items: z.array(z.object({ from: z.string(), n: z.number().optional() })).min(1) });
    expect(() => validateConfig({ items: [{ from: "a" }, { from: 3, n: "x" }] }, s, "f.json", { error: MyError })).toThrow(MyError);
    expect(() => validateConfig({ items: [{ from: "a" }, { from: 3, n: "x" }] }, s, "f.json")).toThrow('f.json: items[1].from: expected a string, got 3; items[1].n: expected a number, got "x"');
    expect(() => validateConfig({ items: [] }, s, "f.json")).toThrow("f.json: items: expected a non-empty list, got []");
  });

  it("names each issue with a function of its path (e.g. command-line flags) and caps the list", () => {
    const s = z.object({ a: positiveInt(), b: positiveInt() });
    expect(() => validateConfig({ a: "x", b: -1 }, s, (p) => `--${String(p[0])}`)).toThrow('--a: expected a positive integer, got "x"; --b: expected a positive integer, got -1');
    const many = z.array(positiveInt());
    expect(() => validateConfig([0, 0, 0, 0], many, "l.json", { max: 2 })).toThrow("l.json: [0]: expected a positive integer, got 0; [1]: expected a positive integer, got 0; ... and 2 more");
  });
});
