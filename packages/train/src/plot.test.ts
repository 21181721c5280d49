import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImage } from "@lm4lv/core";
import type { RgbImage } from "@lm4lv/core";
import { imageGrid, lossSeries, niceTicks, PALETTE, plotLossCurves, writeLossPlot } from "./plot.js";
import { drawText, textWidth } from "./font.js";

/** Pixels whose colour is within 0.02 of `c` (per channel). */
function countColour(img: RgbImage, c: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < img.width * img.height; i++) {
    if (Math.abs(img.data[3 * i] - c[0]) < 0.02 && Math.abs(img.data[3 * i + 1] - c[1]) < 0.02 && Math.abs(img.data[3 * i + 2] - c[2]) < 0.02) n++;
  }
  return n;
}

function solid(w: number, h: number, v: number): RgbImage {
  return { width: w, height: h, data: new Float32Array(w * h * 3).fill(v) };
}

describe("plots", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "lm4lv-plot-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("round tick positions", () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0.13, 0.92, 4)).toEqual([0.2, 0.4, 0.6, 0.8]);
    expect(niceTicks(1, 1000, 4)).toEqual([200, 400, 600, 800, 1000]);
    expect(niceTicks(-0.3, 0.3, 3)).toEqual([-0.2, 0, 0.2]);
  });

  it("draws each series in its colour on a white background, with black axes", () => {
    const n = 200;
    const series = [
      { name: "ce", y: Array.from({ length: n }, (_, i) => 3 * Math.exp(-i / 50) + 0.1) },
      { name: "mse", x: Array.from({ length: n }, (_, i) => i + 1), y: Array.from({ length: n }, (_, i) => 1 / (1 + i)) },
    ];
    for (const logY of [false, true]) {
      const img = plotLossCurves(series, { width: 320, height: 200, logY, title: "loss" });
      expect([img.width, img.height, img.data.length]).toEqual([320, 200, 320 * 200 * 3]);
      expect(countColour(img, [1, 1, 1])).toBeGreaterThan(320 * 200 * 0.5);
      expect(countColour(img, PALETTE[0])).toBeGreaterThan(150);
      expect(countColour(img, PALETTE[1])).toBeGreaterThan(150);
      expect(countColour(img, [0, 0, 0])).toBeGreaterThan(300);
    }
  });

  it("skips non-finite points and non-positive ones on a log axis", () => {
    const img = plotLossCurves([{ name: "a", y: [1, NaN, 0.5, Infinity, 0, -1, 0.25] }], { width: 200, height: 120, logY: true });
    expect(countColour(img, PALETTE[0])).toBeGreaterThan(20);
    expect(() => plotLossCurves([], { width: 50, height: 50 })).toThrow(/too small/);
  });

  it("writes a PNG of the requested size from a training history", async () => {
    const history = Array.from({ length: 30 }, (_, i) => ({ step: i + 1, loss: 2 / (i + 1), parts: { l1: 1 / (i + 1), lpips: 1 / (i + 1) ** 0.5 }, lr: 1e-3, gradNorm: 1 }));
    const series = lossSeries(history);
    expect(series.map((s) => s.name)).toEqual(["loss", "l1", "lpips"]);
    const path = join(dir, "loss.png");
    await writeLossPlot(path, series, { width: 400, height: 250, logY: true });
    const back = await readImage(path);
    expect([back.width, back.height]).toEqual([400, 250]);
    [0, 1, 2].forEach((i) => expect(countColour(back, PALETTE[i])).toBeGreaterThan(40));
  });

  it("lays images out in a grid, with optional captions", () => {
    const rows = [[solid(8, 8, 0), solid(8, 8, 0.5)], [solid(8, 8, 0.25), solid(8, 8, 1)]];
    const g = imageGrid(rows);
    expect([g.width, g.height]).toEqual([20, 20]);
    expect(g.data[0]).toBe(0);
    expect(g.data[(0 * 20 + 12) * 3]).toBe(0.5);
    expect(g.data[(12 * 20 + 0) * 3]).toBe(0.25);
    const labelled = imageGrid(rows, [["in", "out"], ["x", undefined]]);
    expect([labelled.width, labelled.height]).toEqual([20, 2 * (8 + 16) + 4]);
    expect(() => imageGrid(rows, [["a"]])).toThrow(/labels shape/);
    expect(() => imageGrid([[]])).toThrow(/at least one image/);
  });

  it("bitmap text covers the expected pixels", () => {
    const w = 20, h = 7;
    const data = new Float32Array(w * h * 3).fill(1);
    drawText(data, w, h, "1", 0, 0, [0, 0, 0]);
    // "1" = .#. ##. .#. .#. ### → 8 ink pixels
    let ink = 0;
    for (let i = 0; i < w * h; i++) if (data[3 * i] === 0) ink++;
    expect(ink).toBe(8);
    expect(textWidth("abc", 2)).toBe(22);
  });
});
