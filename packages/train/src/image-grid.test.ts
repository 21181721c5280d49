import { describe, expect, it } from "vitest";
import type { RgbImage } from "@lm4lv/core";
import { imageGrid } from "./image-grid.js";
import { drawText } from "./font.js";

function solid(w: number, h: number, v: number): RgbImage {
  return { width: w, height: h, data: new Float32Array(w * h * 3).fill(v) };
}

describe("image grids", () => {
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
  });
});
