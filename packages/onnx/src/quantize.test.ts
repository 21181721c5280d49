import { afterAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { OnnxGraph } from "./graph.js";
import { OrtSession } from "./session.js";
import { weightLinear } from "./layers.js";
import type { WeightFormat } from "./layers.js";
import { int4MatMulNBits, int8MatMulNBits, packNBits, packZeroPoints4, quantizeInt4Blocks, quantizeInt8PerChannel } from "./quantize.js";
import { tempDir } from "@lm4lv/core/testing";

const dir = tempDir("onnx-quantize");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Seeded values in [−1, 1) times `scale` (Park–Miller). */
function seeded(n: number, seed: number, scale = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => (((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1) * scale);
}

/** A weight [N, K] with rows of very different ranges, a zero row and an outlier. */
function testWeight(n: number, k: number): Float32Array {
  const w = seeded(n * k, 11);
  for (let r = 0; r < n; r++) for (let i = 0; i < k; i++) w[r * k + i] *= 10 ** ((r % 5) - 2);
  w.fill(0, 2 * k, 3 * k); // row 2: all zeros
  w[4 * k + 7] = 25; // an outlier
  return w;
}

describe("int8 per output channel", () => {
  it("round-trips every element within half a step of its row's scale", () => {
    const [n, k] = [9, 50];
    const w = testWeight(n, k);
    const q = quantizeInt8PerChannel(w, n, k);
    for (let r = 0; r < n; r++) {
      const s = q.scales[r];
      let amax = 0;
      for (let i = 0; i < k; i++) amax = Math.max(amax, Math.abs(w[r * k + i]));
      if (amax === 0) expect(s).toBe(1);
      else expect(Math.abs(s * 127 - amax) / amax).toBeLessThan(1e-6); // the row's largest |w| maps to ±127
      for (let i = 0; i < k; i++) {
        const c = q.codes[r * k + i];
        expect(c >= -127 && c <= 127).toBe(true);
        const deq = c * s; // float64
        expect(Math.abs(deq - w[r * k + i])).toBeLessThanOrEqual((s / 2) * (1 + 1e-6));
      }
    }
  });

  it("names bad shapes and values", () => {
    expect(() => quantizeInt8PerChannel(new Float32Array(10), 3, 4)).toThrow(/10 values, \[N, K\] = \[3, 4\] needs 12/);
    expect(() => quantizeInt8PerChannel(Float32Array.of(1, NaN), 1, 2)).toThrow(/row 0 holds a non-finite/);
  });
});

describe("int4 blocks", () => {
  it.each([32, 64, 128])("round-trips every element within half a step of its block's scale (block %i, partial last block)", (bs) => {
    const [n, k] = [7, 2 * bs + 16]; // blocks of bs, bs and 16
    const w = testWeight(n, k);
    const q = quantizeInt4Blocks(w, n, k, bs);
    expect([q.blockSize, q.scales.length, q.zeroPoints.length]).toEqual([bs, n * 3, n * 3]);
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < k; i++) {
        const b = Math.floor(i / bs);
        const s = q.scales[r * 3 + b];
        const z = q.zeroPoints[r * 3 + b];
        const c = q.codes[r * k + i];
        expect(c <= 15 && z <= 15).toBe(true);
        const deq = (c - z) * s; // float64
        expect(Math.abs(deq - w[r * k + i])).toBeLessThanOrEqual((s / 2) * (1 + 1e-6));
      }
      // each block's scale spans its own range (widened to 0): (max − min) / 15
      for (let b = 0; b < 3; b++) {
        const block = w.subarray(r * k + b * bs, r * k + Math.min(k, (b + 1) * bs));
        const range = Math.max(0, ...block) - Math.min(0, ...block);
        if (range > 0) expect(q.scales[r * 3 + b]).toBe(Math.fround(range / 15));
      }
    }
    // a zero block: scale 1, every code equals the zero point, so it dequantizes to exactly 0
    expect(q.scales[2 * 3]).toBe(1);
    for (let i = 0; i < k; i++) expect(q.codes[2 * k + i]).toBe(q.zeroPoints[2 * 3 + Math.floor(i / bs)]);
  });

  it("a block of 128 has the range of its four blocks of 32: its step (error bound) is never smaller", () => {
    const [n, k] = [7, 256];
    const w = testWeight(n, k);
    const q32 = quantizeInt4Blocks(w, n, k, 32);
    const q128 = quantizeInt4Blocks(w, n, k, 128);
    let larger = 0;
    for (let r = 0; r < n; r++) for (let b = 0; b < 2; b++) {
      const s128 = q128.scales[r * 2 + b];
      const s32 = Math.max(...q32.scales.subarray(r * 8 + 4 * b, r * 8 + 4 * b + 4));
      if (r === 2) expect(s128).toBe(1); // the zero row
      else {
        expect(s128).toBeGreaterThanOrEqual(s32);
        if (s128 > s32) larger++;
      }
    }
    expect(larger).toBeGreaterThan(0);
  });

  it("rejects block sizes MatMulNBits cannot take", () => {
    expect(() => quantizeInt4Blocks(new Float32Array(48), 1, 48, 24)).toThrow(/power of two ≥ 16/);
    expect(() => quantizeInt4Blocks(new Float32Array(48), 1, 48, 8)).toThrow(/power of two ≥ 16/);
  });
});

/**
 * Row 0: ((i mod 16) − 5) / 4 everywhere, so every block of it spans [−1.25, 2.5]: scale 0.25,
 * zero point 5, codes i mod 16. Row 1: ((i mod 16) − 15) / 2 in columns 0–63 ([−7.5, 0]) and
 * 2 (i mod 16) in 64–79 ([0, 30]).
 */
function handWeight(): Float32Array {
  const w = new Float32Array(2 * 80);
  for (let i = 0; i < 80; i++) {
    const j = i % 16;
    w[i] = (j - 5) / 4;
    w[80 + i] = i < 64 ? (j - 15) / 2 : 2 * j;
  }
  return w;
}

/** 4-bit codes `c` two per byte, low nibble first. */
const nibbles = (c: number[]) => Array.from({ length: c.length / 2 }, (_, j) => c[2 * j] | (c[2 * j + 1] << 4));
const ramp = nibbles(Array.from({ length: 16 }, (_, j) => j)); // codes 0..15: 0x10, 0x32, ..., 0xfe

describe("MatMulNBits packing", () => {
  it("int4 block 64 (N = 2, K = 80: a full block and a partial one, hand-computed)", () => {
    const q = int4MatMulNBits(handWeight(), 2, 80, 64);
    // row 1: block 0 spans [−7.5, 0] (scale 0.5, zero point 15), block 1 [0, 30] (scale 2, zero point 0); codes i mod 16 in both
    expect([...q.scales]).toEqual([0.25, 0.25, 0.5, 2]);
    expect([...q.zeroPoints!]).toEqual([0x55, 0x0f]); // [5, 5] and [15, 0], low nibble first
    expect(ramp).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    // [N, 2 blocks, 32 bytes]; positions 80..127 are padding holding the block's zero point
    expect([...q.b]).toEqual([
      ...ramp, ...ramp, ...ramp, ...ramp, // row 0, block 0: columns 0..63
      ...ramp, ...new Array(24).fill(0x55), // row 0, block 1: columns 64..79, then 48 × zero point 5
      ...ramp, ...ramp, ...ramp, ...ramp, // row 1, block 0
      ...ramp, ...new Array(24).fill(0x00), // row 1, block 1, then 48 × zero point 0
    ]);
    expect([q.K, q.N, q.bits, q.blockSize]).toEqual([80, 2, 4, 64]);
  });

  it("int4 block 128 (N = 2, K = 80: one partial block per row, hand-computed)", () => {
    const q = int4MatMulNBits(handWeight(), 2, 80, 128);
    // row 1 spans [−7.5, 30] in one block: scale 37.5 / 15 = 2.5, zero point round(7.5 / 2.5) = 3,
    // code = round(w / 2.5) + 3: columns 0..63 (w = (j − 15) / 2) round (j − 15) / 5 + 3,
    // columns 64..79 (w = 2j) round 0.8 j + 3
    const left = [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3];
    const right = [3, 4, 5, 5, 6, 7, 8, 9, 9, 10, 11, 12, 13, 13, 14, 15];
    expect([...q.scales]).toEqual([0.25, 2.5]);
    expect([...q.zeroPoints!]).toEqual([0x05, 0x03]); // one block: one nibble per row
    expect(nibbles(left)).toEqual([0x00, 0x10, 0x11, 0x11, 0x22, 0x22, 0x32, 0x33]);
    expect(nibbles(right)).toEqual([0x43, 0x55, 0x76, 0x98, 0xa9, 0xcb, 0xdd, 0xfe]);
    // [N, 1 block, 64 bytes]: 80 codes, then 48 padding positions holding the zero point
    expect([...q.b]).toEqual([
      ...ramp, ...ramp, ...ramp, ...ramp, ...ramp, ...new Array(24).fill(0x55), // row 0
      ...nibbles([...left, ...left, ...left, ...left]), ...nibbles(right), ...new Array(24).fill(0x33), // row 1
    ]);
  });

  it("packs 4-bit codes low nibble first along K, one blob per block, padding with the given code (hand-computed)", () => {
    // N = 2, K = 20, block 16: two blocks per row, the second holds 4 codes + 12 padding.
    const row0 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 2, 3, 4];
    const row1 = [15, 0, 15, 0, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0, 9, 10, 11, 12];
    const packed = packNBits([...row0, ...row1], 2, 20, 4, 16, (r) => (r === 0 ? 8 : 3));
    // byte j of a block holds element 2j (low nibble) and 2j+1 (high nibble)
    expect([...packed]).toEqual([
      0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, // row 0, block 0
      0x21, 0x43, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, // row 0, block 1: 1 2 3 4, then pad 8
      0x0f, 0x0f, 0x77, 0x77, 0x00, 0x00, 0x00, 0x00, // row 1, block 0
      0xa9, 0xcb, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, // row 1, block 1: 9 10 11 12, then pad 3
    ]);
    // 8 bits: one byte per code
    const p8 = packNBits([200, 1, 2], 1, 3, 8, 16, () => 128);
    expect([...p8]).toEqual([200, 1, 2, ...new Array(13).fill(128)]);
    expect(() => packNBits([16], 1, 1, 4, 16)).toThrow(/code 16 at row 0, column 0 does not fit 4 bits/);
  });

  it("packs 4-bit zero points per row, low nibble first, each row on its own bytes (hand-computed)", () => {
    // N = 2 rows of 3 blocks: ceil(3 / 2) = 2 bytes per row
    expect([...packZeroPoints4(Uint8Array.of(1, 2, 3, 15, 0, 9), 2, 3)]).toEqual([0x21, 0x03, 0x0f, 0x09]);
  });
});

/** y = x · dequant(W)ᵀ in float64, W dequantized from unpacked codes (independent of packing). */
function referenceMatMul(x: Float32Array, m: number, deq: Float64Array, n: number, k: number): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let r = 0; r < n; r++) {
    let a = 0;
    for (let j = 0; j < k; j++) a += x[i * k + j] * deq[r * k + j];
    y[i * n + r] = a;
  }
  return y;
}

async function runLinear(format: WeightFormat, w: Float32Array, n: number, k: number, x: Float32Array, m: number, accuracyLevel: number, tag: string, int4BlockSize?: number): Promise<Float32Array> {
  const g = new OnnxGraph(`linear_${format}`);
  const xin = g.input("x", "float32", ["m", k]);
  const kernel = () => {
    const t = new Float32Array(k * n);
    for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) t[j * n + r] = w[r * k + j];
    return t;
  };
  const y = weightLinear(g, xin, { name: "proj", inDim: k, outDim: n, weight: () => w, kernel }, format, { accuracyLevel, int4BlockSize });
  g.output(y, "float32", ["m", n], "y");
  const s = await OrtSession.create(g.save(join(dir, `${tag}.onnx`)).path, { intraOpThreads: 1 });
  try {
    return (await s.run({ x: new ort.Tensor("float32", x, [m, k]) })).y.data as Float32Array;
  } finally {
    s.dispose();
  }
}

describe("MatMulNBits on ONNX Runtime", () => {
  // K = 80 is a multiple of none of the block sizes: the last int4 block (16 of 32, 16 of 64, 80 of
  // 128) and the int8 block (128) are padded.
  const [n, k, m] = [24, 80, 3];
  const w = testWeight(n, k);
  const x = seeded(m * k, 5);

  it.each([32, 64, 128])("int4 block %i (float activations) equals a float64 dequantize-then-matmul", async (bs) => {
    const q = quantizeInt4Blocks(w, n, k, bs);
    const nb = Math.ceil(k / bs);
    const deq = new Float64Array(n * k);
    for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) {
      const b = r * nb + Math.floor(j / bs);
      deq[r * k + j] = (q.codes[r * k + j] - q.zeroPoints[b]) * q.scales[b];
    }
    const ref = referenceMatMul(x, m, deq, n, k);
    const y = await runLinear("int4", w, n, k, x, m, 0, `int4_b${bs}_acc0`, bs);
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - ref[i])).toBeLessThan(1e-4 * (1 + Math.abs(ref[i])));
    // the same node inputs as the export builds: [N, nb, bs / 2] codes, [N, ceil(nb / 2)] zero points
    const p = int4MatMulNBits(w, n, k, bs);
    expect([p.b.length, p.scales.length, p.zeroPoints!.length]).toEqual([n * nb * (bs / 2), n * nb, n * Math.ceil(nb / 2)]);
  });

  it("names a block size MatMulNBits cannot take when the graph is built", () => {
    const g = new OnnxGraph("bad_block");
    const xin = g.input("x", "float32", ["m", k]);
    expect(() => weightLinear(g, xin, { name: "proj", inDim: k, outDim: n, weight: () => w, kernel: () => w }, "int4", { int4BlockSize: 48 })).toThrow(/weightLinear proj: block size 48 must be a power of two ≥ 16/);
  });

  it("int8 (float activations) equals a float64 dequantize-then-matmul", async () => {
    const q = quantizeInt8PerChannel(w, n, k);
    const deq = new Float64Array(n * k);
    for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) deq[r * k + j] = q.codes[r * k + j] * q.scales[r];
    const ref = referenceMatMul(x, m, deq, n, k);
    const y = await runLinear("int8", w, n, k, x, m, 0, "int8_acc0");
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - ref[i])).toBeLessThan(1e-4 * (1 + Math.abs(ref[i])));
    const nb = int8MatMulNBits(w, n, k);
    expect([nb.blockSize, nb.b.length, nb.scales.length, nb.zeroPoints]).toEqual([128, n * 128, n, undefined]);
  });

  it("int8 activations (accuracy level 4) stay within the activation-rounding bound", async () => {
    // With accuracy level 4 the kernel rounds A to int8 per block of K (scale max|a|/127), so each
    // output moves by at most Σ_blocks (scale_A/2) · Σ_k |ŵ| beyond the float result; on top of that
    // float32 rounding of its zero-point correction, relative to Σ_k |a| · scale_W · 2^(bits−1).
    for (const [format, bs] of [["int4", 32], ["int4", 64], ["int4", 128], ["int8", 128]] as const) {
      const q4 = quantizeInt4Blocks(w, n, k, format === "int4" ? bs : 32);
      const q8 = quantizeInt8PerChannel(w, n, k);
      const nb = Math.ceil(k / bs);
      const deq = new Float64Array(n * k);
      const wScale = new Float64Array(n * k);
      for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) {
        const b = r * nb + Math.floor(j / bs);
        deq[r * k + j] = format === "int4" ? (q4.codes[r * k + j] - q4.zeroPoints[b]) * q4.scales[b] : q8.codes[r * k + j] * q8.scales[r];
        wScale[r * k + j] = format === "int4" ? q4.scales[b] : q8.scales[r];
      }
      const ref = referenceMatMul(x, m, deq, n, k);
      const y = await runLinear(format, w, n, k, x, m, 4, `${format}_b${bs}_acc4`, format === "int4" ? bs : undefined);
      const zpMax = format === "int4" ? 16 : 128;
      for (let i = 0; i < m; i++) for (let r = 0; r < n; r++) {
        let bound = 0;
        let rounding = 0;
        for (let b0 = 0; b0 < k; b0 += bs) {
          let amax = 0;
          for (let j = b0; j < Math.min(k, b0 + bs); j++) amax = Math.max(amax, Math.abs(x[i * k + j]));
          let wsum = 0;
          for (let j = b0; j < Math.min(k, b0 + bs); j++) {
            wsum += Math.abs(deq[r * k + j]);
            rounding += Math.abs(x[i * k + j]) * wScale[r * k + j] * zpMax;
          }
          bound += (amax / 127 / 2) * wsum;
        }
        expect(Math.abs(y[i * n + r] - ref[i * n + r])).toBeLessThanOrEqual(bound * 1.01 + 1e-5 * rounding);
      }
    }
  });
});
