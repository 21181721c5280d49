/**
 * Configurations the fixture does not cover (tied embeddings, other rope_theta, MHA/MQA,
 * head_dim ≠ hidden/heads, biases, rope scaling), checked against an independent
 * straightforward float64 implementation written below, plus save/load round trips,
 * sharded and F16/BF16-stored checkpoints, and the gradient with respect to inputsEmbeds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { f16ToF32, f32ToF16, f32ToBF16, bf16ToF32, initBackend, Mulberry32, readSafetensors, writeSafetensors } from "@lm4lv/core";
import { normalPair } from "@lm4lv/data";
import type { TensorToWrite } from "@lm4lv/core";
import { LlamaForCausalLM } from "./model.js";
import { parseLlamaConfig } from "./config.js";
import { llamaWeightTable } from "./weights.js";
import { LLAMA_TINY_DIR as FIXTURE } from "./testing.js";

// ---------------------------------------------------------------------------------------------
// Seeded normal numbers: core's Mulberry32 through data's Box–Muller (the cosine of each pair).

function rng(seed: number): () => number {
  const uniform = new Mulberry32(seed);
  return () => normalPair(() => uniform.next())[0];
}

function randn(n: number, std: number, next: () => number, mean = 0): Float32Array {
  return Float32Array.from({ length: n }, () => mean + std * next());
}

// ---------------------------------------------------------------------------------------------
// Reference: HF Llama written as plain loops in float64. Weights are read by HF name, HF layout.

type RawConfig = Record<string, any>;
type Weights = Record<string, ArrayLike<number>>;

function refInvFreq(c: RawConfig): number[] {
  const hs = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  const out: number[] = [];
  for (let i = 0; i < hs / 2; i++) {
    let f = Math.pow(c.rope_theta ?? 10000, -(2 * i) / hs);
    const s = c.rope_scaling;
    const kind = s?.rope_type ?? s?.type;
    if (kind === "linear") f /= s.factor;
    if (kind === "llama3") {
      const wl = (2 * Math.PI) / f;
      const lowWl = s.original_max_position_embeddings / s.low_freq_factor;
      const highWl = s.original_max_position_embeddings / s.high_freq_factor;
      if (wl > lowWl) f = f / s.factor;
      else if (wl >= highWl) {
        const a = (s.original_max_position_embeddings / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - a) * (f / s.factor) + a * f;
      }
    }
    out.push(f);
  }
  return out;
}

/** y[n][o] = Σ_i x[n][i] · W[o][i] + b[o] with W stored (out, in) as HF does. */
function refLinear(x: number[][], W: ArrayLike<number>, out: number, b?: ArrayLike<number>): number[][] {
  return x.map((row) => {
    const y = new Array<number>(out).fill(0);
    for (let o = 0; o < out; o++) {
      let acc = b ? b[o] : 0;
      for (let i = 0; i < row.length; i++) acc += row[i] * W[o * row.length + i];
      y[o] = acc;
    }
    return y;
  });
}

function refRmsNorm(x: number[][], w: ArrayLike<number>, eps: number): number[][] {
  return x.map((row) => {
    const ms = row.reduce((a, v) => a + v * v, 0) / row.length;
    const r = 1 / Math.sqrt(ms + eps);
    return row.map((v, i) => w[i] * v * r);
  });
}

/**
 * embeds: [B][T][C]; mask: [B][T] (1 = real); positions: [B][T].
 * Returns the final-norm hidden states and logits, [B][T][·]. Rows of fully masked queries are zero.
 */
function refForward(c: RawConfig, W: Weights, embeds: number[][][], mask?: number[][], positions?: number[][]) {
  const C = c.hidden_size;
  const nh = c.num_attention_heads;
  const kv = c.num_key_value_heads ?? nh;
  const hs = c.head_dim ?? C / nh;
  const I = c.intermediate_size;
  const eps = c.rms_norm_eps;
  const invFreq = refInvFreq(c);
  const hidden: number[][][] = [];
  const logits: number[][][] = [];
  embeds.forEach((seq, b) => {
    const T = seq.length;
    const m = mask?.[b] ?? seq.map(() => 1);
    const pos = positions?.[b] ?? seq.map((_, t) => t);
    let x = seq.map((r) => [...r]);
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}`;
      const bias = (n: string) => (c.attention_bias ? W[`${p}.self_attn.${n}.bias`] : undefined);
      const h = refRmsNorm(x, W[`${p}.input_layernorm.weight`], eps);
      const q = refLinear(h, W[`${p}.self_attn.q_proj.weight`], nh * hs, bias("q_proj"));
      const k = refLinear(h, W[`${p}.self_attn.k_proj.weight`], kv * hs, bias("k_proj"));
      const v = refLinear(h, W[`${p}.self_attn.v_proj.weight`], kv * hs, bias("v_proj"));
      // RoPE: rotate the pair (i, i + hs/2) of every head by pos · invFreq[i].
      const rotate = (vec: number[], heads: number, t: number) => {
        for (let hd = 0; hd < heads; hd++) {
          for (let i = 0; i < hs / 2; i++) {
            const a = vec[hd * hs + i];
            const bb = vec[hd * hs + i + hs / 2];
            const ang = pos[t] * invFreq[i];
            vec[hd * hs + i] = a * Math.cos(ang) - bb * Math.sin(ang);
            vec[hd * hs + i + hs / 2] = bb * Math.cos(ang) + a * Math.sin(ang);
          }
        }
      };
      q.forEach((r, t) => rotate(r, nh, t));
      k.forEach((r, t) => rotate(r, kv, t));
      const att = seq.map(() => new Array<number>(nh * hs).fill(0));
      for (let hd = 0; hd < nh; hd++) {
        const g = Math.floor(hd / (nh / kv)); // the key/value head this query head reads
        for (let t = 0; t < T; t++) {
          const keys: number[] = [];
          for (let s = 0; s <= t; s++) if (m[s]) keys.push(s);
          if (!keys.length) continue;
          const sc = keys.map((s) => {
            let d = 0;
            for (let i = 0; i < hs; i++) d += q[t][hd * hs + i] * k[s][g * hs + i];
            return d / Math.sqrt(hs);
          });
          const mx = Math.max(...sc);
          const e = sc.map((z) => Math.exp(z - mx));
          const sum = e.reduce((a, z) => a + z, 0);
          keys.forEach((s, j) => {
            for (let i = 0; i < hs; i++) att[t][hd * hs + i] += (e[j] / sum) * v[s][g * hs + i];
          });
        }
      }
      const o = refLinear(att, W[`${p}.self_attn.o_proj.weight`], C, bias("o_proj"));
      x = x.map((r, t) => r.map((z, i) => z + o[t][i]));
      const h2 = refRmsNorm(x, W[`${p}.post_attention_layernorm.weight`], eps);
      const mb = (n: string) => (c.mlp_bias ? W[`${p}.mlp.${n}.bias`] : undefined);
      const gate = refLinear(h2, W[`${p}.mlp.gate_proj.weight`], I, mb("gate_proj"));
      const up = refLinear(h2, W[`${p}.mlp.up_proj.weight`], I, mb("up_proj"));
      const act = gate.map((r, t) => r.map((z, i) => (z / (1 + Math.exp(-z))) * up[t][i]));
      const down = refLinear(act, W[`${p}.mlp.down_proj.weight`], C, mb("down_proj"));
      x = x.map((r, t) => r.map((z, i) => z + down[t][i]));
    }
    const hn = refRmsNorm(x, W["model.norm.weight"], eps);
    const head = c.tie_word_embeddings ? W["model.embed_tokens.weight"] : W["lm_head.weight"];
    hidden.push(hn);
    logits.push(refLinear(hn, head, c.vocab_size));
  });
  return { hidden, logits };
}

function refEmbed(c: RawConfig, W: Weights, ids: number[][]): number[][][] {
  const E = W["model.embed_tokens.weight"];
  return ids.map((row) => row.map((id) => Array.from({ length: c.hidden_size }, (_, i) => E[id * c.hidden_size + i])));
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** HF-layout random weights for a raw config (norms ≈ 1, biases and weights ≈ N(0, 0.2)). */
function randomHfWeights(raw: RawConfig, seed: number): Record<string, { shape: number[]; data: Float32Array }> {
  const next = rng(seed);
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const s of llamaWeightTable(parseLlamaConfig(raw))) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    out[s.name] = { shape: s.shape, data: s.role === "norm" ? randn(n, 0.1, next, 1) : randn(n, 0.2, next) };
  }
  return out;
}

function writeCheckpoint(dir: string, raw: RawConfig, tensors: Record<string, TensorToWrite>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(raw));
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, atol = 1e-4): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]) - atol * (1 + Math.abs(expected[i]));
    if (!(d <= worst)) { worst = d; at = i; }
  }
  expect(at, `${what}: index ${at} got ${actual[at]}, expected ${expected[at]}`).toBe(-1);
}

/** Flattens [B][T][D] at the positions where mask is 1. */
function flatValid(x: number[][][], mask?: number[][]): number[] {
  return x.flatMap((seq, b) => seq.flatMap((r, t) => (mask && !mask[b][t] ? [] : r)));
}
function tfValid(t: tf.Tensor3D, mask?: number[][]): number[] {
  return flatValid(t.arraySync(), mask);
}

const BASE = { model_type: "llama", vocab_size: 40, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2, rms_norm_eps: 1e-5 };

const CONFIGS: Record<string, RawConfig> = {
  "MHA, tied, head_dim ≠ hidden/heads, biases, rope_theta 5e5": {
    ...BASE, num_attention_heads: 4, num_key_value_heads: 4, head_dim: 10, tie_word_embeddings: true,
    rope_theta: 500000, attention_bias: true, mlp_bias: true,
  },
  "MQA (1 kv head), llama3 rope scaling, untied": {
    ...BASE, num_attention_heads: 3, head_dim: 8, num_key_value_heads: 1, tie_word_embeddings: false, rope_theta: 10000,
    rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 8, original_max_position_embeddings: 64 },
  },
  "GQA 6/2, default head_dim, linear rope scaling, legacy inv_freq keys": {
    ...BASE, num_attention_heads: 6, num_key_value_heads: 2, rope_theta: 1000, rope_scaling: { type: "linear", factor: 2 },
  },
};

const IDS = [
  [1, 5, 9, 33, 2, 17, 39],
  [0, 0, 1, 22, 8, 30, 4],
];
const MASK = [
  [1, 1, 1, 1, 1, 1, 1],
  [0, 0, 1, 1, 1, 1, 1],
];
const POSITIONS = MASK.map((row) => {
  let n = -1;
  return row.map((m) => (m ? ++n : 1));
});

describe.each(["wasm", "cpu"])("other configurations vs a float64 reference on %s", (backend) => {
  let root: string;
  beforeAll(async () => {
    expect(await initBackend(backend)).toBe(backend);
    root = mkdtempSync(join(tmpdir(), "lm4lv-llm-"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("the reference itself matches the HF fixture", () => {
    const raw = JSON.parse(JSON.stringify(parseLlamaConfig(JSON.parse(readFileSync(join(FIXTURE, "config.json"), "utf8")))));
    const W = Object.fromEntries(Object.entries(readSafetensors(FIXTURE).tensors).map(([k, v]) => [k, v.data as Float32Array]));
    const cases = readSafetensors(join(FIXTURE, "cases.safetensors")).tensors;
    const ids = cases["input_ids_2x12/inputs/input_ids"];
    const rows = [Array.from(ids.data.subarray(0, 12)), Array.from(ids.data.subarray(12, 24))];
    const ref = refForward(raw, W, refEmbed(raw, W, rows));
    expectClose(flatValid(ref.logits), cases["input_ids_2x12/outputs/logits"].data as Float32Array, "reference logits", 2e-5);
  });

  Object.entries(CONFIGS).forEach(([name, raw], k) => {
    it(`${name}: logits and hidden states, left-padded batch, save/load round trip`, () => {
      const dir = join(root, `${backend}-cfg${k}`);
      const hf = randomHfWeights(raw, 100 + k);
      const stored: Record<string, TensorToWrite> = { ...hf };
      if (raw.rope_scaling?.type === "linear") stored["model.layers.0.self_attn.rotary_emb.inv_freq"] = { shape: [2], data: new Float32Array([1, 2]) };
      writeCheckpoint(dir, raw, stored);
      const lm = LlamaForCausalLM.fromPretrained(dir);
      const W = Object.fromEntries(Object.entries(hf).map(([n, t]) => [n, t.data]));
      const ref = refForward(raw, W, refEmbed(raw, W, IDS), MASK, POSITIONS);

      const inputIds = tf.tensor2d(IDS, undefined, "int32");
      const attentionMask = tf.tensor2d(MASK, undefined, "int32");
      const out = lm.forwardSync({ inputIds, attentionMask });
      expectClose(tfValid(out.lastHiddenState, MASK), flatValid(ref.hidden, MASK), "hidden");
      expectClose(tfValid(out.logits, MASK), flatValid(ref.logits, MASK), "logits");

      // Same through the cache: 4 positions, then 3 single tokens.
      const cache = lm.newCache();
      const steps: tf.Tensor3D[] = [];
      for (const [from, n] of [[0, 4], [4, 1], [5, 1], [6, 1]]) {
        const o = lm.forwardSync({ inputIds: inputIds.slice([0, from], [2, n]), attentionMask: attentionMask.slice([0, 0], [2, from + n]), cache });
        steps.push(o.logits);
        o.lastHiddenState.dispose();
      }
      const stepped = tf.concat(steps, 1) as tf.Tensor3D;
      expectClose(tfValid(stepped, MASK), flatValid(ref.logits, MASK), "cached logits");
      cache.dispose();

      // save → fromPretrained gives identical logits.
      lm.save(join(dir, "resaved"));
      const again = LlamaForCausalLM.fromPretrained(join(dir, "resaved"));
      const out2 = again.forwardSync({ inputIds, attentionMask });
      expect(Array.from(out2.logits.dataSync())).toEqual(Array.from(out.logits.dataSync()));
      if (raw.tie_word_embeddings) expect(Object.keys(readSafetensors(join(dir, "resaved")).tensors)).not.toContain("lm_head.weight");

      tf.dispose([inputIds, attentionMask, out.logits, out.lastHiddenState, out2.logits, out2.lastHiddenState, stepped, ...steps]);
      lm.dispose();
      again.dispose();
    });
  });

  it("F16- and BF16-stored checkpoints load as float32 of the rounded values", () => {
    const raw = CONFIGS["MHA, tied, head_dim ≠ hidden/heads, biases, rope_theta 5e5"];
    const hf = randomHfWeights(raw, 7);
    for (const dtype of ["F16", "BF16"] as const) {
      const dir = join(root, `${backend}-${dtype}`);
      writeCheckpoint(dir, raw, Object.fromEntries(Object.entries(hf).map(([n, t]) => [n, { ...t, dtype }])));
      const round = (a: Float32Array) => (dtype === "F16" ? f16ToF32(f32ToF16(a)) : bf16ToF32(f32ToBF16(a)));
      const W = Object.fromEntries(Object.entries(hf).map(([n, t]) => [n, round(t.data)]));
      const ref = refForward(raw, W, refEmbed(raw, W, IDS));
      const lm = LlamaForCausalLM.fromPretrained(dir);
      const inputIds = tf.tensor2d(IDS, undefined, "int32");
      const out = lm.forwardSync({ inputIds });
      expectClose(tfValid(out.logits), flatValid(ref.logits), `${dtype} logits`);
      // save(dtype) writes that dtype and reloads to the same model.
      lm.save(join(dir, "resaved"), { dtype });
      const again = LlamaForCausalLM.fromPretrained(join(dir, "resaved"));
      expect(readSafetensors(join(dir, "resaved")).tensors["model.norm.weight"].dtype).toBe(dtype);
      const out2 = again.forwardSync({ inputIds });
      expect(Array.from(out2.logits.dataSync())).toEqual(Array.from(out.logits.dataSync()));
      tf.dispose([inputIds, out.logits, out.lastHiddenState, out2.logits, out2.lastHiddenState]);
      lm.dispose();
      again.dispose();
    }
  });

  it("a sharded checkpoint (two shards + index.json) loads", () => {
    const raw = CONFIGS["MQA (1 kv head), llama3 rope scaling, untied"];
    const hf = randomHfWeights(raw, 11);
    const dir = join(root, `${backend}-sharded`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "config.json"), JSON.stringify(raw));
    const names = Object.keys(hf);
    const shards = [names.slice(0, 9), names.slice(9)];
    const weightMap: Record<string, string> = {};
    shards.forEach((list, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(dir, file), Object.fromEntries(list.map((n) => [n, hf[n]])));
      list.forEach((n) => (weightMap[n] = file));
    });
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const lm = LlamaForCausalLM.fromPretrained(dir);
    const W = Object.fromEntries(Object.entries(hf).map(([n, t]) => [n, t.data]));
    const ref = refForward(raw, W, refEmbed(raw, W, IDS));
    const inputIds = tf.tensor2d(IDS, undefined, "int32");
    const out = lm.forwardSync({ inputIds });
    expectClose(tfValid(out.logits), flatValid(ref.logits), "sharded logits");
    tf.dispose([inputIds, out.logits, out.lastHiddenState]);
    lm.dispose();
  });

  it("fromConfig: deterministic per seed, matches the reference after save", () => {
    const raw = { ...CONFIGS["GQA 6/2, default head_dim, linear rope scaling, legacy inv_freq keys"], initializer_range: 0.3 };
    const a = LlamaForCausalLM.fromConfig(raw, 3);
    const b = LlamaForCausalLM.fromConfig(raw, 3);
    const c = LlamaForCausalLM.fromConfig(raw, 4);
    const inputIds = tf.tensor2d(IDS, undefined, "int32");
    const [la, lb, lc] = [a, b, c].map((m) => m.forwardSync({ inputIds }));
    expect(Array.from(la.logits.dataSync())).toEqual(Array.from(lb.logits.dataSync()));
    expect(Array.from(la.logits.dataSync())).not.toEqual(Array.from(lc.logits.dataSync()));
    const dir = join(root, `${backend}-fromConfig`);
    a.save(dir);
    const W = Object.fromEntries(Object.entries(readSafetensors(dir).tensors).map(([n, t]) => [n, t.data as Float32Array]));
    const ref = refForward(parseLlamaConfig(raw), W, refEmbed(raw, W, IDS));
    expectClose(tfValid(la.logits), flatValid(ref.logits), "fromConfig logits");
    tf.dispose([inputIds, ...[la, lb, lc].flatMap((o) => [o.logits, o.lastHiddenState])]);
    [a, b, c].forEach((m) => m.dispose());
  });

  it("gradient w.r.t. inputsEmbeds matches central finite differences", () => {
    const lm = LlamaForCausalLM.fromPretrained(FIXTURE);
    const raw = lm.config as RawConfig;
    const W = Object.fromEntries(Object.entries(readSafetensors(FIXTURE).tensors).map(([n, t]) => [n, t.data as Float32Array]));
    const [B, T, C] = [1, 5, 64];
    const next = rng(5);
    const e0 = randn(B * T * C, 0.5, next);
    const R = randn(B * T * C, 1, next);
    const weightT = tf.tensor3d(R, [B, T, C]);
    const f = (e: tf.Tensor) => {
      const out = lm.forwardSync({ inputsEmbeds: e as tf.Tensor3D });
      out.logits.dispose();
      return out.lastHiddenState.mul(weightT).sum();
    };
    const e = tf.tensor3d(e0, [B, T, C]);
    const grad = tf.grad(f)(e).dataSync();
    // Float64 reference of the same scalar, differentiated numerically.
    const f64 = (flat: Float64Array | Float32Array) => {
      const emb = [Array.from({ length: T }, (_, t) => Array.from(flat.subarray(t * C, (t + 1) * C)))];
      const h = refForward(raw, W, emb).hidden;
      return flatValid(h).reduce((a, v, i) => a + v * R[i], 0);
    };
    const h = 1e-5;
    const checked = [0, 63, 64 + 17, 2 * 64 + 5, 3 * 64 + 40, 4 * 64 + 63];
    for (const i of checked) {
      const plus = Float64Array.from(e0);
      const minus = Float64Array.from(e0);
      plus[i] += h;
      minus[i] -= h;
      const fd = (f64(plus) - f64(minus)) / (2 * h);
      expect(Math.abs(grad[i] - fd), `d/de[${i}]: tf.grad ${grad[i]}, finite difference ${fd}`).toBeLessThan(1e-3 * (1 + Math.abs(fd)));
    }
    // The model itself, differenced in float32 with a coarse step.
    const eps = 1e-2;
    for (const i of [3, 2 * 64 + 9]) {
      const at = (delta: number) => tf.tidy(() => {
        const x = Float32Array.from(e0);
        x[i] += delta;
        return f(tf.tensor3d(x, [B, T, C])).dataSync()[0];
      });
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      expect(Math.abs(grad[i] - fd), `d/de[${i}] float32: tf.grad ${grad[i]}, finite difference ${fd}`).toBeLessThan(2e-2 * (1 + Math.abs(fd)));
    }
    tf.dispose([e, weightT]);
    lm.dispose();
  });
});
