import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeImage, type RgbImage } from "@lm4lv/core";
import { evaluateFiles, evaluateFolders, pairFiles } from "./evaluate.js";
import { MetricError, psnr, ssim } from "./metrics.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures");
const expected = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")) as {
  cases: { gt: string; pred: string; cropBorder: number; yChannel: boolean; psnr: number; ssim: number }[];
};

function pattern(width: number, height: number, seed: number, noise: number): RgbImage {
  let s = seed >>> 0;
  const data = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const base = 0.2 + 0.6 * ((x + 2 * y + 7 * c) % 17) / 17;
    data[(y * width + x) * 3 + c] = Math.min(1, Math.max(0, base + noise * (s / 2 ** 32 - 0.5)));
  }
  return { width, height, data };
}

let root: string;
let n = 0;
function freshDir(): string {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "lm4lv-metrics-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("evaluateFolders", () => {
  it("scores every GT image against its same-named prediction; mean over images", async () => {
    const gtDir = freshDir();
    const predDir = freshDir();
    const gts = [pattern(32, 28, 1, 0.1), pattern(32, 28, 2, 0.1), pattern(40, 24, 3, 0.1)];
    const preds = [pattern(32, 28, 1, 0.3), pattern(32, 28, 9, 0.2), pattern(40, 24, 4, 0.4)];
    const names = ["b.png", "a.png", "c.png"];
    for (let i = 0; i < 3; i++) {
      await writeImage(join(gtDir, names[i]), gts[i]);
      await writeImage(join(predDir, names[i]), preds[i]);
    }
    writeFileSync(join(gtDir, "notes.txt"), "not an image");
    const res = await evaluateFolders(gtDir, predDir, { cropBorder: 4 });
    expect(res.images.map((r) => r.name)).toEqual(["a.png", "b.png", "c.png"]);
    expect(res.unmatched).toEqual([]);
    // PNG is lossless at 8 bits and psnr/ssim round float input to 8 bits: same numbers
    for (const r of res.images) {
      const i = names.indexOf(r.name);
      expect(r.psnr).toBeCloseTo(psnr(gts[i], preds[i]), 12);
      expect(r.ssim).toBeCloseTo(ssim(gts[i], preds[i]), 12);
    }
    expect(res.mean.psnr).toBeCloseTo(res.images.reduce((s, r) => s + r.psnr, 0) / 3, 12);
    expect(res.mean.ssim).toBeCloseTo(res.images.reduce((s, r) => s + r.ssim, 0) / 3, 12);
  });

  it("matches scikit-image on the fixture PNGs", async () => {
    const gtDir = freshDir();
    const predDir = freshDir();
    copyFileSync(join(FIXTURES, "gt.png"), join(gtDir, "x.png"));
    copyFileSync(join(FIXTURES, "blurred.png"), join(predDir, "x.png"));
    copyFileSync(join(FIXTURES, "odd_gt.png"), join(gtDir, "y.png"));
    copyFileSync(join(FIXTURES, "odd_noisy.png"), join(predDir, "y.png"));
    const res = await evaluateFolders(gtDir, predDir, { cropBorder: 4, yChannel: true });
    const want = (gt: string, pred: string) =>
      expected.cases.find((c) => c.gt === gt && c.pred === pred && c.cropBorder === 4 && c.yChannel)!;
    const x = want("gt.png", "blurred.png");
    const y = want("odd_gt.png", "odd_noisy.png");
    expect(Math.abs(res.images[0].psnr - x.psnr)).toBeLessThan(1e-12);
    expect(Math.abs(res.images[1].ssim - y.ssim)).toBeLessThan(1e-12);
    expect(Math.abs(res.mean.psnr - (x.psnr + y.psnr) / 2)).toBeLessThan(1e-12);
    expect(Math.abs(res.mean.ssim - (x.ssim + y.ssim) / 2)).toBeLessThan(1e-12);
  });

  it("pairs by stem and suffix, prefers the same extension, reports unmatched predictions", async () => {
    expect(pairFiles(["1.png", "2.png"], ["1.jpg", "2.png", "2.jpg", "3.png"])).toEqual({
      pairs: [["1.png", "1.jpg"], ["2.png", "2.png"]],
      missing: [],
      unmatched: ["2.jpg", "3.png"],
    });
    expect(pairFiles(["1.png"], ["1_out.webp"], "_out").pairs).toEqual([["1.png", "1_out.webp"]]);
    expect(() => pairFiles(["1.png"], ["1.jpg", "1.webp"])).toThrow("ground truth 1.png: several predictions match (1.jpg, 1.webp)");

    const gtDir = freshDir();
    const predDir = freshDir();
    const p = pattern(24, 24, 5, 0.1);
    const extra = { ...p, data: p.data.map((v) => 1 - v) };
    await writeImage(join(gtDir, "p.png"), p);
    await writeImage(join(predDir, "p_sr.jpg"), p);
    await writeImage(join(predDir, "extra.png"), extra);
    const res = await evaluateFolders(gtDir, predDir, { suffix: "_sr" });
    expect(res.images.map((r) => r.name)).toEqual(["p.png"]);
    // the JPEG copy of the same image was measured, not the inverted extra.png
    expect(res.images[0].psnr).toBeGreaterThan(psnr(p, extra) + 10);
    expect(res.unmatched).toEqual(["extra.png"]);
  });

  it("names the GT file that has no prediction", async () => {
    const gtDir = freshDir();
    const predDir = freshDir();
    await writeImage(join(gtDir, "a.png"), pattern(24, 24, 1, 0.1));
    await writeImage(join(gtDir, "b.png"), pattern(24, 24, 2, 0.1));
    await writeImage(join(predDir, "a.png"), pattern(24, 24, 1, 0.1));
    await expect(evaluateFolders(gtDir, predDir)).rejects.toThrow(`no prediction in ${predDir} for ${join(gtDir, "b.png")}`);
  });

  it("rejects empty folders, non-folders, unreadable files and size mismatches", async () => {
    const gtDir = freshDir();
    const predDir = freshDir();
    await expect(evaluateFolders(gtDir, predDir)).rejects.toThrow(`ground-truth folder ${gtDir}: no image files`);
    await expect(evaluateFolders(join(root, "missing"), predDir)).rejects.toThrow(join(root, "missing"));
    await writeImage(join(gtDir, "a.png"), pattern(24, 24, 1, 0.1));
    await expect(evaluateFolders(gtDir, predDir)).rejects.toThrow(`prediction folder ${predDir}: no image files`);
    await expect(evaluateFolders(join(gtDir, "a.png"), predDir)).rejects.toThrow("not a folder");

    writeFileSync(join(predDir, "a.png"), "this is not a PNG");
    const bad = evaluateFolders(gtDir, predDir);
    await expect(bad).rejects.toThrow(MetricError);
    await expect(evaluateFolders(gtDir, predDir)).rejects.toThrow(`prediction ${join(predDir, "a.png")}: cannot read image`);

    await writeImage(join(predDir, "a.png"), pattern(24, 20, 1, 0.1));
    await expect(evaluateFolders(gtDir, predDir)).rejects.toThrow(
      `size mismatch: ${join(gtDir, "a.png")} is 24×24, ${join(predDir, "a.png")} is 20×24 (height×width)`,
    );
  });
});

describe("evaluateFiles", () => {
  it("scores one pair, named after the GT file", async () => {
    const res = await evaluateFiles(join(FIXTURES, "gt.png"), join(FIXTURES, "darker.png"));
    const c = expected.cases.find((x) => x.pred === "darker.png" && x.cropBorder === 4 && !x.yChannel)!;
    expect(res.images).toHaveLength(1);
    expect(res.images[0].name).toBe("gt.png");
    expect(Math.abs(res.mean.psnr - c.psnr)).toBeLessThan(1e-12);
    expect(Math.abs(res.mean.ssim - c.ssim)).toBeLessThan(1e-12);
  });

  it("names a missing file", async () => {
    const missing = join(root, "nope.png");
    await expect(evaluateFiles(join(FIXTURES, "gt.png"), missing)).rejects.toThrow(`prediction ${missing}: file not found`);
  });
});
