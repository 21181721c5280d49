import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readImage, toUint8, type RgbImage } from "@lm4lv/core";
import { gaussianKernel, MetricError, psnr, rgbToY, ssim, type Uint8RgbImage } from "./metrics.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures");

interface Case {
  gt: string;
  pred: string;
  cropBorder: number;
  yChannel: boolean;
  psnr: number;
  ssim: number;
}
const expected = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")) as { cases: Case[] };

function seededImage(width: number, height: number, seed: number): RgbImage {
  let s = seed >>> 0;
  const data = new Float32Array(width * height * 3);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32;
  }
  return { width, height, data };
}

describe("psnr / ssim against scikit-image (fixtures/expected.json)", () => {
  it("has the cases", () => expect(expected.cases.length).toBe(20));
  for (const c of expected.cases) {
    const label = `${c.gt} vs ${c.pred}, crop ${c.cropBorder}, ${c.yChannel ? "Y" : "RGB"}`;
    it(label, async () => {
      const gt = await readImage(join(FIXTURES, c.gt));
      const pred = await readImage(join(FIXTURES, c.pred));
      const opts = { cropBorder: c.cropBorder, yChannel: c.yChannel };
      expect(Math.abs(psnr(gt, pred, opts) - c.psnr)).toBeLessThan(1e-12);
      expect(Math.abs(ssim(gt, pred, opts) - c.ssim)).toBeLessThan(1e-12);
    });
  }

  it("gives the same numbers for uint8 input", async () => {
    const c = expected.cases.find((x) => x.pred === "noisy.png" && x.cropBorder === 4 && !x.yChannel)!;
    const toU8 = (img: RgbImage): Uint8RgbImage => ({ width: img.width, height: img.height, data: toUint8(img) });
    const gt = toU8(await readImage(join(FIXTURES, c.gt)));
    const pred = toU8(await readImage(join(FIXTURES, c.pred)));
    expect(Math.abs(psnr(gt, pred) - c.psnr)).toBeLessThan(1e-12);
    expect(Math.abs(ssim(gt, pred) - c.ssim)).toBeLessThan(1e-12);
  });
});

describe("psnr / ssim conventions", () => {
  it("identical images → PSNR 100 and SSIM 1", () => {
    const a = seededImage(30, 26, 1);
    const b = { ...a, data: a.data.slice() };
    expect(psnr(a, b)).toBe(100);
    expect(ssim(a, b)).toBeCloseTo(1, 12);
    expect(psnr(a, b, { yChannel: true })).toBe(100);
    expect(ssim(a, b, { yChannel: true })).toBeCloseTo(1, 12);
  });

  it("PSNR is 20·log10(255/√MSE) on the rounded 0–255 values", () => {
    // a constant offset of 3 levels everywhere → MSE 9
    const w = 20, h = 18;
    const a: Uint8RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3).fill(100) };
    const b: Uint8RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3).fill(103) };
    expect(psnr(a, b)).toBeCloseTo(20 * Math.log10(255 / 3), 12);
    // float input is rounded to 8 bits first (default) or used as is
    const f = (v: number): RgbImage => ({ width: w, height: h, data: new Float32Array(w * h * 3).fill(v) });
    expect(psnr(f(100 / 255), f(103.4 / 255))).toBeCloseTo(20 * Math.log10(255 / 3), 12);
    expect(psnr(f(100 / 255), f(103.4 / 255), { quantize: false })).toBeCloseTo(20 * Math.log10(255 / 3.4), 4);
  });

  it("crops the border before measuring", () => {
    const a = seededImage(24, 24, 7);
    const b = { ...a, data: a.data.slice() };
    // change only the outermost 4-pixel frame
    for (let y = 0; y < 24; y++) for (let x = 0; x < 24; x++) {
      if (x < 4 || y < 4 || x >= 20 || y >= 20) for (let c = 0; c < 3; c++) b.data[(y * 24 + x) * 3 + c] = 1 - a.data[(y * 24 + x) * 3 + c];
    }
    expect(psnr(a, b, { cropBorder: 4 })).toBe(100);
    expect(ssim(a, b, { cropBorder: 4 })).toBeCloseTo(1, 12);
    expect(psnr(a, b, { cropBorder: 3 })).toBeLessThan(40);
    expect(ssim(a, b, { cropBorder: 0 })).toBeLessThan(0.9);
  });

  it("Y is MATLAB's rgb2ycbcr luma", () => {
    expect(rgbToY(0, 0, 0)).toBe(16);
    expect(rgbToY(255, 255, 255)).toBeCloseTo(235, 10);
    expect(rgbToY(255, 0, 0)).toBeCloseTo(16 + 65.481, 10);
    expect(rgbToY(0, 255, 0)).toBeCloseTo(16 + 128.553, 10);
    expect(rgbToY(0, 0, 255)).toBeCloseTo(16 + 24.966, 10);
  });

  it("window is OpenCV's getGaussianKernel(11, 1.5)", () => {
    const k = gaussianKernel(11, 1.5);
    expect(k.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 14);
    let z = 0;
    for (let i = -5; i <= 5; i++) z += Math.exp(-(i * i) / 4.5);
    expect(k[5]).toBeCloseTo(1 / z, 15);
    expect(k[0]).toBeCloseTo(Math.exp(-25 / 4.5) / z, 15);
    expect(k[2]).toBe(k[8]);
  });

  it("size mismatch names both shapes", () => {
    const a = seededImage(30, 26, 1);
    const b = seededImage(31, 26, 2);
    expect(() => psnr(a, b)).toThrow(MetricError);
    expect(() => psnr(a, b)).toThrow("26×30×3 vs 26×31×3");
    expect(() => ssim(a, b)).toThrow("26×30×3 vs 26×31×3");
  });

  it("rejects bad data, a crop that eats the image and images smaller than the window", () => {
    const a = seededImage(12, 12, 1);
    expect(() => psnr(a, { width: 12, height: 12, data: new Float32Array(10) })).toThrow("10 values for 12×12×3");
    expect(() => psnr(a, a, { cropBorder: 6 })).toThrow("crop border 6 leaves nothing of a 12×12 image");
    expect(() => psnr(a, a, { cropBorder: -1 })).toThrow("cropBorder");
    expect(() => ssim(a, a, { cropBorder: 1 })).toThrow("10×10, smaller than the 11×11 window");
    expect(ssim(a, a, { cropBorder: 0 })).toBeCloseTo(1, 12);
  });
});
