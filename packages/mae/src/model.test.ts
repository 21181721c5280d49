import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend, SafetensorsFile, writeSafetensors, ConfigError } from "@lm4lv/core";
import { ViTMAE } from "./model.js";
import { parseViTMAEConfig, readViTMAEConfig } from "./config.js";
import { patchify, unpatchify } from "./ops.js";
import { expectedWeights } from "./weights.js";
import { maxAbsDiff, readCase } from "@lm4lv/core/testing";
import { VIT_MAE_TINY_DIR as FIXTURE_DIR, data } from "./testing.js";

const ATOL = 1e-4;

describe.each(["wasm", "cpu"])("ViTMAE parity with Hugging Face on %s", (backend) => {
  let mae: ViTMAE;
  beforeAll(async () => {
    await initBackend(backend);
    mae = ViTMAE.fromPretrained(FIXTURE_DIR);
  });
  afterAll(() => mae.dispose());

  for (const caseName of ["mask_ratio_0.75", "mask_ratio_0.0_identity_noise"]) {
    describe(caseName, () => {
      const c = readCase(FIXTURE_DIR, caseName);
      const input = (k: string) => c.get(`inputs/${k}`)!;
      const output = (k: string) => c.get(`outputs/${k}`)!;
      const maskRatio = caseName === "mask_ratio_0.75" ? 0.75 : 0;
      let out: ReturnType<ViTMAE["forward"]>;
      let pixels: tf.Tensor4D;

      beforeAll(() => {
        const px = input("pixel_values");
        pixels = tf.tensor4d(px.data as Float32Array, px.shape as [number, number, number, number]);
        const nz = input("noise");
        const noise = tf.tensor2d(nz.data as Float32Array, nz.shape as [number, number]);
        out = mae.forward(pixels, { noise, maskRatio, outputHiddenStates: true });
        noise.dispose();
      });
      afterAll(() => {
        pixels.dispose();
        tf.dispose([out.lastHiddenState, out.idsRestore, out.mask, out.logits, out.loss, ...(out.hiddenStates ?? [])]);
      });

      it("ids_restore and mask are exact", () => {
        expect(out.idsRestore.shape).toEqual(output("ids_restore").shape);
        expect(Array.from(data(out.idsRestore))).toEqual(Array.from(output("ids_restore").data));
        expect(Array.from(data(out.mask))).toEqual(Array.from(output("mask").data));
      });

      it("last_hidden_state, hidden states and logits within 1e-4", () => {
        expect(out.lastHiddenState.shape).toEqual(output("last_hidden_state").shape);
        expect(maxAbsDiff(data(out.lastHiddenState), output("last_hidden_state").data)).toBeLessThan(ATOL);
        expect(out.hiddenStates).toHaveLength(3);
        for (let i = 0; i < 3; i++) {
          const ref = output(`encoder_hidden_states_${i}`);
          expect(out.hiddenStates![i].shape).toEqual(ref.shape);
          expect(maxAbsDiff(data(out.hiddenStates![i]), ref.data)).toBeLessThan(ATOL);
        }
        expect(out.logits.shape).toEqual(output("logits").shape);
        expect(maxAbsDiff(data(out.logits), output("logits").data)).toBeLessThan(ATOL);
      });

      it("patchify matches patchified_pixel_values exactly", () => {
        const p = patchify(pixels, mae.patchSize);
        expect(p.shape).toEqual(output("patchified_pixel_values").shape);
        expect(maxAbsDiff(data(p), output("patchified_pixel_values").data)).toBe(0);
        const back = unpatchify(p, mae.patchSize, 3);
        expect(maxAbsDiff(data(back), data(pixels))).toBe(0);
        tf.dispose([p, back]);
      });

      it("loss (and norm-pix loss) within 1e-5 relative; NaN when nothing is masked", () => {
        const ref = output("loss").data[0];
        const got = out.loss.dataSync()[0];
        if (Number.isNaN(ref)) {
          expect(maskRatio).toBe(0);
          expect(got).toBeNaN();
        } else {
          expect(Math.abs(got - ref) / Math.abs(ref)).toBeLessThan(1e-5);
        }
        const normRef = c.get("outputs/loss_norm_pix_loss_true");
        if (normRef) {
          const nz = input("noise");
          const o = mae.forward(pixels, { noise: nz.data as Float32Array, maskRatio, normPixLoss: true });
          const v = o.loss.dataSync()[0];
          expect(Math.abs(v - normRef.data[0]) / Math.abs(normRef.data[0])).toBeLessThan(1e-5);
          expect(Math.abs(v - got)).toBeGreaterThan(1e-4); // the norm-pix target really differs
          tf.dispose([o.lastHiddenState, o.idsRestore, o.mask, o.logits, o.loss]);
        }
      });

      if (caseName === "mask_ratio_0.0_identity_noise") {
        it("encode() equals last_hidden_state and decode() equals reconstruction_unpatchified", async () => {
          const feats = await mae.encode(pixels);
          expect(feats.shape).toEqual([2, mae.numTokens, mae.hiddenSize]);
          expect(maxAbsDiff(data(feats), output("last_hidden_state").data)).toBeLessThan(ATOL);
          const recon = await mae.decode(feats);
          const ref = output("reconstruction_unpatchified");
          expect(recon.shape).toEqual(ref.shape);
          expect(maxAbsDiff(data(recon), ref.data)).toBeLessThan(ATOL);
          // postprocess: de-normalise and clamp
          const images = mae.postprocess(recon);
          expect(images).toHaveLength(2);
          expect(images[0].width).toBe(32);
          const std = [0.229, 0.224, 0.225], mean = [0.485, 0.456, 0.406];
          const r = ref.data as Float32Array;
          for (const [y, x, ch] of [[0, 0, 0], [5, 17, 1], [31, 31, 2]]) {
            const want = Math.min(1, Math.max(0, r[ch * 1024 + y * 32 + x] * std[ch] + mean[ch]));
            expect(images[0].data[(y * 32 + x) * 3 + ch]).toBeCloseTo(want, 4);
          }
          tf.dispose([feats, recon]);
        });
      }
    });
  }
});

describe("ViTMAE loading, saving and other shapes", () => {
  const tmp = mkdtempSync(join(tmpdir(), "mae-test-"));
  beforeAll(async () => {
    await initBackend("cpu");
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("the expected-weight table matches the fixture checkpoint exactly", () => {
    const f = SafetensorsFile.open(join(FIXTURE_DIR, "model.safetensors"));
    const config = readViTMAEConfig(FIXTURE_DIR);
    const specs = expectedWeights(config);
    expect(specs.map((s) => s.name).sort()).toEqual(f.keys().sort());
    for (const s of specs) expect(f.entry(s.name).shape).toEqual(s.shape);
    f.close();
  });

  it("reports missing, unexpected and mis-shaped tensors by name", () => {
    const dir = join(tmp, "broken");
    mkdirSync(dir);
    copyFileSync(join(FIXTURE_DIR, "config.json"), join(dir, "config.json"));
    const f = SafetensorsFile.open(join(FIXTURE_DIR, "model.safetensors"));
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const k of f.keys()) if (k !== "decoder.mask_token") tensors[k] = { shape: f.entry(k).shape, data: f.readFloat32(k) };
    f.close();
    tensors["vit.layernorm.bias"] = { shape: [2, 24], data: tensors["vit.layernorm.bias"].data };
    tensors["lm_head.weight"] = { shape: [1], data: new Float32Array(1) };
    writeSafetensors(join(dir, "model.safetensors"), tensors);
    let msg = "";
    try {
      ViTMAE.fromPretrained(dir);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('missing "decoder.mask_token" (expected shape [1, 1, 32])');
    expect(msg).toContain('"vit.layernorm.bias" has shape [2, 24], expected [48]');
    expect(msg).toContain('unexpected "lm_head.weight"');
    expect(msg).toContain("3 problems");
    // non-strict loading ignores only the unexpected tensor
    expect(() => ViTMAE.fromPretrained(dir, { strict: false })).toThrow(/2 problems/);
  });

  it("rejects folders that are not models and bad config fields, naming them", () => {
    expect(() => ViTMAE.fromPretrained(join(tmp, "nope"))).toThrow(/nope: no such folder/);
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    expect(() => ViTMAE.fromPretrained(empty)).toThrow(/not a model folder \(no config.json\)/);
    writeFileSync(join(empty, "config.json"), JSON.stringify({ model_type: "vit_mae", hidden_size: "big" }));
    expect(() => ViTMAE.fromPretrained(empty)).toThrow(/config\.json: hidden_size: expected a positive integer, got "big"/);
    expect(() => parseViTMAEConfig({ hidden_size: 48, num_attention_heads: 5 })).toThrow(ConfigError);
    expect(() => parseViTMAEConfig({ hidden_size: 48, num_attention_heads: 5 })).toThrow(/hidden_size: must be divisible by num_attention_heads \(5\), got 48/);
  });

  it("fixture: save → load round trip keeps every tensor and output bit-exact", () => {
    const a = ViTMAE.fromPretrained(FIXTURE_DIR);
    const dir = join(tmp, "roundtrip");
    a.save(dir);
    const b = ViTMAE.fromPretrained(dir);
    expect(b.config.hidden_size).toBe(48);
    const named = b.namedParameters();
    for (const [name, t] of a.namedParameters()) expect(maxAbsDiff(data(t), data(named.get(name)!))).toBe(0);
    // namedParameters and the file written hold HF names and layout: every tensor equals the original checkpoint's
    const orig = SafetensorsFile.open(join(FIXTURE_DIR, "model.safetensors"));
    const saved = SafetensorsFile.open(join(dir, "model.safetensors"));
    expect(saved.keys().sort()).toEqual(orig.keys().sort());
    expect([...named.keys()].sort()).toEqual(orig.keys().sort());
    for (const k of orig.keys()) {
      expect(saved.entry(k).shape).toEqual(orig.entry(k).shape);
      expect(maxAbsDiff(saved.readFloat32(k), orig.readFloat32(k))).toBe(0);
      expect(named.get(k)!.shape, k).toEqual(orig.entry(k).shape);
      expect(maxAbsDiff(data(named.get(k)!), orig.readFloat32(k)), k).toBe(0);
      expect(a.readParameter(k).shape, k).toEqual(orig.entry(k).shape);
      expect(maxAbsDiff(a.readParameter(k).data, orig.readFloat32(k)), k).toBe(0);
    }
    orig.close();
    saved.close();
    const x = tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 7) as tf.Tensor4D;
    const fa = a.encodeSync(x), fb = b.encodeSync(x);
    expect(maxAbsDiff(data(fa), data(fb))).toBe(0);
    tf.dispose([x, fa, fb]);
    a.dispose();
    b.dispose();
  });

  it("a random config (qkv_bias false, image 24, patch 6, relu-free gelu_new) builds, runs, saves and reloads", () => {
    const config = {
      hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 20,
      image_size: 24, patch_size: 6, qkv_bias: false, hidden_act: "gelu_new",
      decoder_hidden_size: 8, decoder_num_hidden_layers: 1, decoder_num_attention_heads: 2, decoder_intermediate_size: 12,
      mask_ratio: 0.5, initializer_range: 0.2,
    };
    const m = ViTMAE.fromConfig(config, 3);
    expect(m.namedParameters().has("vit.encoder.layer.0.attention.attention.query.bias")).toBe(false);
    expect(m.numTokens).toBe(17);
    const x = tf.randomNormal([2, 3, 24, 24], 0, 1, "float32", 1) as tf.Tensor4D;
    const out = m.forward(x, { seed: 5 });
    expect(out.lastHiddenState.shape).toEqual([2, 1 + 8, 16]); // floor(16 · 0.5) = 8 kept
    expect(out.logits.shape).toEqual([2, 16, 108]);
    expect(Array.from(data(out.mask)).reduce((a, v) => a + v, 0)).toBe(16);
    expect(Number.isFinite(out.loss.dataSync()[0])).toBe(true);
    const recon = m.decodeSync(m.encodeSync(x));
    expect(recon.shape).toEqual([2, 3, 24, 24]);

    const dir = join(tmp, "random");
    m.save(dir);
    const m2 = ViTMAE.fromPretrained(dir);
    expect(m2.config.qkv_bias).toBe(false);
    const recon2 = m2.decodeSync(m2.encodeSync(x));
    expect(maxAbsDiff(data(recon), data(recon2))).toBe(0);
    // same seed → same weights; another seed → different
    const m3 = ViTMAE.fromConfig(config, 3), m4 = ViTMAE.fromConfig(config, 4);
    const w = "decoder.decoder_pred.weight";
    expect(maxAbsDiff(data(m.namedParameters().get(w)!), data(m3.namedParameters().get(w)!))).toBe(0);
    expect(maxAbsDiff(data(m.namedParameters().get(w)!), data(m4.namedParameters().get(w)!))).toBeGreaterThan(0);
    tf.dispose([x, recon, recon2, out.lastHiddenState, out.idsRestore, out.mask, out.logits, out.loss]);
    [m, m2, m3, m4].forEach((mm) => mm.dispose());
  });

  it("does not leak tensors in encode/decode/forward", async () => {
    const m = ViTMAE.fromPretrained(FIXTURE_DIR);
    const x = tf.randomNormal([1, 3, 32, 32]) as tf.Tensor4D;
    const run = async () => {
      tf.tidy(() => { m.decodeSync(m.encodeSync(x)); }); // disposes the encode output too
      const f = await m.encode(x);
      const r = await m.decode(f);
      tf.dispose([f, r]);
      const o = m.forward(x, { outputHiddenStates: true });
      tf.dispose([o.lastHiddenState, o.idsRestore, o.mask, o.logits, o.loss, ...(o.hiddenStates ?? [])]);
    };
    await run(); // first calls may allocate backend constants once
    const before = tf.memory().numTensors;
    await run();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    m.dispose();
  });
});
