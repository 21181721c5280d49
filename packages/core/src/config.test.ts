import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readConfig, positive, type ConfigSchema } from "./config.js";

const schema: ConfigSchema = {
  hidden_size: { type: "integer", check: positive },
  layer_norm_eps: { type: "number", default: 1e-12 },
  qkv_bias: { type: "boolean", default: true },
  rope_scaling: { type: "object|null", default: null },
};

describe("readConfig", () => {
  const dir = mkdtempSync(join(tmpdir(), "cfg-"));
  it("fills defaults and keeps unknown fields", () => {
    writeFileSync(join(dir, "config.json"), JSON.stringify({ hidden_size: 8, model_type: "x" }));
    const c = readConfig<Record<string, unknown>>(dir, schema);
    expect(c).toEqual({ hidden_size: 8, model_type: "x", layer_norm_eps: 1e-12, qkv_bias: true, rope_scaling: null });
  });
  it("names the file and every bad field", () => {
    writeFileSync(join(dir, "config.json"), JSON.stringify({ hidden_size: 0, qkv_bias: "yes" }));
    expect(() => readConfig(dir, schema)).toThrow(/config\.json: field "hidden_size": must be > 0; field "qkv_bias" should be boolean, got "yes"/);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ hidden_size: 2.5 }));
    expect(() => readConfig(dir, schema)).toThrow(/"hidden_size" should be integer/);
    writeFileSync(join(dir, "config.json"), "{}");
    expect(() => readConfig(dir, schema)).toThrow(/missing required field "hidden_size"/);
    writeFileSync(join(dir, "config.json"), "{not json");
    expect(() => readConfig(dir, schema)).toThrow(/config\.json: not valid JSON/);
    expect(() => readConfig(join(dir, "nope"), schema)).toThrow(/nope: file not found/);
  });
});
