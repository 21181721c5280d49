import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend, SafetensorsFile, readImage, writeImage } from "@lm4lv/core";
import {
  denormalizeImageNet, gatherTokens, lenKeep, normalizeImageNet, patchify, preprocessFiles, randomMasking,
  sincosPositionEmbedding, unpatchify, postprocess, gelu,
} from "./ops.js";
import { maxAbsDiff } from "@lm4lv/core/testing";
import { VIT_MAE_TINY_DIR as FIXTURE_DIR, data } from "./testing.js";

describe.each(["wasm", "cpu"])("MAE helpers on %s", (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it("sin-cos tables equal the checkpoint's stored encoder and decoder tables", () => {
    const f = SafetensorsFile.open(join(FIXTURE_DIR, "model.safetensors"));
    const enc = f.readFloat32("vit.embeddings.position_embeddings");
    const dec = f.readFloat32("decoder.decoder_pos_embed");
    f.close();
    expect(maxAbsDiff(sincosPositionEmbedding(48, 8), enc)).toBeLessThan(1e-6);
    expect(maxAbsDiff(sincosPositionEmbedding(32, 8), dec)).toBeLessThan(1e-6);
    expect(sincosPositionEmbedding(32, 8, false).length).toBe(64 * 32);
  });

  it("patch vector order is (p, q, c) and unpatchify inverts it", () => {
    // pixel value encodes its own (c, y, x)
    const [c, h, w, p] = [3, 4, 6, 2];
    const vals = new Float32Array(c * h * w);
    for (let ci = 0; ci < c; ci++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) vals[(ci * h + y) * w + x] = ci * 100 + y * 10 + x;
    const img = tf.tensor4d(vals, [1, c, h, w]);
    const patches = patchify(img, p);
    expect(patches.shape).toEqual([1, 6, 12]);
    const d = data(patches);
    // patch 4 = grid row 1, col 1 → pixels y ∈ {2,3}, x ∈ {2,3}; vector index (pi·p + qi)·C + ci
    const patch = Array.from(d.slice(4 * 12, 5 * 12));
    const want: number[] = [];
    for (let pi = 0; pi < p; pi++) for (let qi = 0; qi < p; qi++) for (let ci = 0; ci < c; ci++) want.push(ci * 100 + (2 + pi) * 10 + (2 + qi));
    expect(patch).toEqual(want);
    const back = unpatchify(patches, p, c, [2, 3]);
    expect(Array.from(data(back))).toEqual(Array.from(vals));
    expect(() => unpatchify(patches, p, c)).toThrow(/do not form a 2×2 grid/);
    expect(() => patchify(img, 4)).toThrow(/not divisible by patch size 4/);
    tf.dispose([img, patches, back]);
  });

  it("gatherTokens picks per-sample rows (B > 1)", () => {
    const x = tf.tensor3d(Float32Array.from({ length: 3 * 4 * 2 }, (_, i) => i), [3, 4, 2]);
    const ids = tf.tensor2d([[3, 0], [1, 1], [2, 3]], [3, 2], "int32");
    const g = gatherTokens(x, ids);
    expect(Array.from(data(g))).toEqual([6, 7, 0, 1, 10, 11, 10, 11, 20, 21, 22, 23]);
    tf.dispose([x, ids, g]);
  });

  it("len_keep is floor(L·(1 − ratio)) in float64, as Python's int()", () => {
    expect(lenKeep(64, 0.75)).toBe(16);
    expect(lenKeep(196, 0.75)).toBe(49);
    expect(lenKeep(10, 0.9)).toBe(0); // 10 · 0.09999999999999998
    expect(lenKeep(10, 0.7)).toBe(3); // 10 · 0.30000000000000004
    expect(lenKeep(64, 0)).toBe(64);
  });

  it("randomMasking keeps the lowest-noise patches and restores order", () => {
    const x = tf.tensor3d(Float32Array.from({ length: 2 * 5 * 1 }, (_, i) => i), [2, 5, 1]);
    const noise = [0.5, 0.1, 0.9, 0.3, 0.7, /* row 2 */ 0, 1, 2, 3, 4];
    const { kept, mask, idsRestore } = randomMasking(x, noise, 0.6); // keep floor(5·0.4) = 2
    expect(Array.from(data(kept))).toEqual([1, 3, 5, 6]);
    expect(Array.from(data(mask))).toEqual([1, 0, 1, 0, 1, 0, 0, 1, 1, 1]);
    // ids_shuffle row 0 = [1, 3, 0, 4, 2] → ids_restore = its inverse
    expect(Array.from(data(idsRestore))).toEqual([2, 0, 4, 1, 3, 0, 1, 2, 3, 4]);
    expect(() => randomMasking(x, [1, 2, 3], 0.5)).toThrow(/noise has 3 values, expected 2×5/);
    tf.dispose([x, kept, mask, idsRestore]);
  });

  it("ImageNet normalisation and its inverse", () => {
    const x = tf.tensor4d([0, 1, 0.5, 0.25, 0.2, 0.8], [1, 3, 1, 2]);
    const n = normalizeImageNet(x);
    const d = data(n);
    expect(d[0]).toBeCloseTo((0 - 0.485) / 0.229, 5);
    expect(d[3]).toBeCloseTo((0.25 - 0.456) / 0.224, 5);
    expect(d[5]).toBeCloseTo((0.8 - 0.406) / 0.225, 5);
    expect(maxAbsDiff(data(denormalizeImageNet(n)), data(x))).toBeLessThan(1e-6);
    // postprocess de-normalises and clamps
    const over = tf.tensor4d([10, -10, 0, 0, 0, 0], [1, 3, 1, 2]);
    const [img] = postprocess(over);
    expect(img.data[0]).toBe(1);
    expect(img.data[3]).toBe(0);
    expect(img.data[1]).toBeCloseTo(0.456, 6);
    tf.dispose([x, n, over]);
  });

  it("gelu is the exact erf form", () => {
    const x = tf.tensor1d([-3, -1, 0, 0.5, 2]);
    // 0.5·x·(1 + erf(x/√2)) from float64 erf values
    const want = [-0.0040496973, -0.15865525393, 0, 0.34573123063, 1.95449973610];
    expect(maxAbsDiff(data(gelu(x)), want)).toBeLessThan(2e-6);
    x.dispose();
  });
});

describe("pre-processing of files (spec §1)", () => {
  const tmp = mkdtempSync(join(tmpdir(), "mae-ops-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("bicubic resize to image_size, [0,1], normalise → [B, 3, S, S]", async () => {
    await initBackend("cpu");
    const w = 40, h = 20;
    const pix = new Float32Array(w * h * 3);
    for (let i = 0; i < w * h; i++) { pix[3 * i] = (i % w) / w; pix[3 * i + 1] = Math.floor(i / w) / h; pix[3 * i + 2] = 0.5; }
    const path = join(tmp, "grad.png");
    await writeImage(path, { width: w, height: h, data: pix });
    const x = await preprocessFiles([path, path], 16);
    expect(x.shape).toEqual([2, 3, 16, 16]);
    const ref = await readImage(path, { size: 16 });
    const d = data(x);
    for (const [y, xx, c] of [[0, 0, 0], [7, 9, 1], [15, 15, 2]]) {
      const mean = [0.485, 0.456, 0.406][c], std = [0.229, 0.224, 0.225][c];
      expect(d[c * 256 + y * 16 + xx]).toBeCloseTo((ref.data[(y * 16 + xx) * 3 + c] - mean) / std, 5);
    }
    await expect(preprocessFiles([join(tmp, "missing.png")], 16)).rejects.toThrow(/missing.png: file not found/);
    x.dispose();
  });
});
