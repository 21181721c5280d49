import { describe, expect, it } from "vitest";
import { ConfigError } from "@lm4lv/core";
import { LLAMA_PRESETS, llamaPreset, parseLlamaConfig } from "./config.js";

const base = { vocab_size: 32, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 4 };

describe("parseLlamaConfig", () => {
  it("fills HF defaults: kv heads = heads, head_dim = hidden / heads", () => {
    const c = parseLlamaConfig(base);
    expect(c.num_key_value_heads).toBe(4);
    expect(c.head_dim).toBe(4);
    expect(c.rope_theta).toBe(10000);
    expect(c.rope_scaling).toBeNull();
    expect(c.tie_word_embeddings).toBe(false);
    expect(c.hidden_act).toBe("silu");
  });

  it("keeps an explicit head_dim and a list of eos ids", () => {
    const c = parseLlamaConfig({ ...base, head_dim: 10, num_key_value_heads: 2, eos_token_id: [5, 6] });
    expect(c.head_dim).toBe(10);
    expect(c.eos_token_id).toEqual([5, 6]);
  });

  it("reports bad fields by name and source", () => {
    expect(() => parseLlamaConfig({ ...base, hidden_size: undefined }, "x/config.json")).toThrow(/^x\/config\.json: hidden_size: missing \(expected a positive integer\)$/);
    expect(() => parseLlamaConfig({ ...base, num_key_value_heads: 3 })).toThrow(ConfigError);
    expect(() => parseLlamaConfig({ ...base, num_key_value_heads: 3 })).toThrow(/num_key_value_heads: must divide num_attention_heads \(4\), got 3/);
    expect(() => parseLlamaConfig({ ...base, hidden_act: "gelu" })).toThrow(/hidden_act: only "silu" is supported, got "gelu"/);
    expect(() => parseLlamaConfig({ ...base, hidden_size: 18 })).toThrow(/not a multiple of num_attention_heads/);
    expect(() => parseLlamaConfig({ ...base, rope_scaling: { rope_type: "yarn", factor: 4 } })).toThrow(/rope_scaling\.rope_type: unsupported \(use null, "linear" or "llama3"\), got "yarn"/);
    expect(() => parseLlamaConfig({ ...base, rope_scaling: { rope_type: "llama3", factor: 8 } })).toThrow(/rope_scaling\.low_freq_factor/);
  });

  it("accepts llama3 and linear (also under the old key `type`) rope scaling", () => {
    const l3 = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    expect(parseLlamaConfig({ ...base, rope_scaling: l3 }).rope_scaling).toEqual(l3);
    expect(parseLlamaConfig({ ...base, rope_scaling: { type: "linear", factor: 2 } }).rope_scaling).toEqual({ rope_type: "linear", factor: 2 });
  });

  it("presets carry the published sizes", () => {
    const l2 = llamaPreset("llama-2-7b");
    expect([l2.hidden_size, l2.intermediate_size, l2.num_hidden_layers, l2.num_key_value_heads, l2.head_dim]).toEqual([4096, 11008, 32, 32, 128]);
    const tl = llamaPreset("tinyllama-1.1b");
    expect([tl.hidden_size, tl.num_key_value_heads, tl.head_dim, tl.num_hidden_layers]).toEqual([2048, 4, 64, 22]);
    expect(llamaPreset("tiny", { tie_word_embeddings: true }).tie_word_embeddings).toBe(true);
    expect(Object.keys(LLAMA_PRESETS)).toEqual(["llama-2-7b", "tinyllama-1.1b", "tiny"]);
  });
});

describe("readLlamaConfig", () => {
  it("reads a real config.json, keeps unknown HF fields, names the file and fields in errors", async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { readLlamaConfig } = await import("./config.js");
    const dir = mkdtempSync(join(tmpdir(), "llama-config-"));
    const file = join(dir, "config.json");
    const hf = { architectures: ["LlamaForCausalLM"], model_type: "llama", transformers_version: "4.44.0", torch_dtype: "bfloat16", ...base, num_key_value_heads: null, pretraining_tp: 1 };
    writeFileSync(file, JSON.stringify(hf));
    const c = readLlamaConfig(dir);
    expect([c.num_key_value_heads, c.head_dim, c.pretraining_tp, c.transformers_version]).toEqual([4, 4, 1, "4.44.0"]);
    writeFileSync(file, JSON.stringify({ ...hf, hidden_size: "abc", bos_token_id: -1, eos_token_id: [2, "x"] }));
    expect(() => readLlamaConfig(dir)).toThrow(`${file}: hidden_size: expected a positive integer, got "abc"; bos_token_id: expected a token id (an integer >= 0) or null, got -1; eos_token_id: expected a token id, a list of ids or null, got [2,"x"]`);
    writeFileSync(file, JSON.stringify({ ...hf, head_dim: 3 }));
    expect(() => readLlamaConfig(dir)).toThrow(`${file}: head_dim: expected a positive even integer, got 3`);
    writeFileSync(file, JSON.stringify({ ...hf, hidden_size: 12 })); // 12 / 4 = 3: odd head width
    expect(() => readLlamaConfig(dir)).toThrow(/hidden_size: hidden_size \/ num_attention_heads \(4\) is odd: RoPE needs an even head_dim, got 12/);
    writeFileSync(file, JSON.stringify({ ...hf, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 8192 } }));
    expect(() => readLlamaConfig(dir)).toThrow(`${file}: rope_scaling.high_freq_factor: must exceed low_freq_factor`);
    writeFileSync(file, JSON.stringify({ ...hf, rope_scaling: { rope_type: "default" } }));
    expect(readLlamaConfig(dir).rope_scaling).toBeNull();
    rmSync(dir, { recursive: true, force: true });
  });
});
