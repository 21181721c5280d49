import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@lm4lv/core";
import { parseViTMAEConfig, readViTMAEConfig, vitMAEPreset, VIT_MAE_PRESETS } from "./config.js";
import { expectedWeights } from "./weights.js";
import { VIT_MAE_TINY_DIR as FIXTURE_DIR } from "./testing.js";

describe("ViTMAEConfig", () => {
  it("reads the fixture config.json with HF field names", () => {
    const c = readViTMAEConfig(FIXTURE_DIR);
    expect(c).toMatchObject({ hidden_size: 48, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 96, image_size: 32, patch_size: 4, decoder_hidden_size: 32, layer_norm_eps: 1e-12, qkv_bias: true, mask_ratio: 0.75, norm_pix_loss: false });
    expect(c.initializer_range).toBe(0.1);
  });

  it("presets have the released shapes and parameter counts", () => {
    const base = vitMAEPreset("mae-base");
    expect([base.hidden_size, base.num_hidden_layers, base.num_attention_heads, base.intermediate_size, base.patch_size]).toEqual([768, 12, 12, 3072, 16]);
    const large = vitMAEPreset("mae-large");
    expect([large.hidden_size, large.num_hidden_layers, large.num_attention_heads, large.intermediate_size]).toEqual([1024, 24, 16, 4096]);
    const huge = vitMAEPreset("mae-huge");
    expect([huge.hidden_size, huge.num_hidden_layers, huge.num_attention_heads, huge.intermediate_size, huge.patch_size]).toEqual([1280, 32, 16, 5120, 14]);
    for (const c of [base, large, huge]) {
      expect([c.decoder_hidden_size, c.decoder_num_hidden_layers, c.decoder_num_attention_heads, c.decoder_intermediate_size, c.image_size]).toEqual([512, 8, 16, 2048, 224]);
    }
    // facebook/vit-mae-base ViTMAEForPreTraining: 111,907,840 parameters (encoder 85.8M + decoder 26.1M incl. the fixed tables)
    const count = (c: typeof base) => expectedWeights(c).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
    expect(count(base)).toBe(111907840);
    expect(Object.keys(VIT_MAE_PRESETS)).toEqual(["tiny", "mae-base", "mae-large", "mae-huge"]);
    expect(vitMAEPreset("mae-large", { image_size: 112 }).image_size).toBe(112);
  });

  it("errors name the source and the field", () => {
    expect(() => parseViTMAEConfig({ hidden_size: "x" }, "my.json")).toThrow(ConfigError);
    expect(() => parseViTMAEConfig({ hidden_size: "x" }, "my.json")).toThrow(/^my.json: hidden_size: expected a positive integer, got "x"$/);
    expect(() => parseViTMAEConfig({ mask_ratio: 1 })).toThrow(/mask_ratio: expected a number in \[0, 1\), got 1/);
    expect(() => parseViTMAEConfig({ hidden_act: "swish2" })).toThrow(/hidden_act: expected one of gelu, gelu_new, gelu_pytorch_tanh, relu, silu, got "swish2"/);
    expect(() => parseViTMAEConfig({ image_size: 30, patch_size: 4 })).toThrow(/image_size: must be divisible by patch_size \(4\), got 30/);
    expect(() => parseViTMAEConfig({ hidden_size: 50, num_attention_heads: 5 })).toThrow(/hidden_size: must be a multiple of 4 \(2-D sin-cos position embedding\), got 50/);
    expect(() => parseViTMAEConfig({ model_type: "llama" }, "x/config.json")).toThrow(/^x\/config.json: model_type: expected "vit_mae", got "llama"$/);
  });

  it("keeps the fields it does not know, and reads a real file naming it in errors", () => {
    const c = parseViTMAEConfig({ transformers_version: "4.40.0", torch_dtype: "float32" });
    expect(c.transformers_version).toBe("4.40.0");
    expect(c.hidden_size).toBe(768);
    const dir = mkdtempSync(join(tmpdir(), "mae-config-"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(FIXTURE_DIR, "config.json"), "utf8")), hidden_size: "abc", patch_size: 0 }));
    expect(() => readViTMAEConfig(dir)).toThrow(`${join(dir, "config.json")}: hidden_size: expected a positive integer, got "abc"; patch_size: expected a positive integer, got 0`);
    rmSync(dir, { recursive: true, force: true });
  });
});
