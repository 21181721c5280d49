import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { gaussianKernel } from "@lm4lv/metrics";
import type { RgbImage } from "@lm4lv/core";
import {
  flipHorizontal,
  flipVertical,
  gaussianBlur,
  gaussianNoise,
  identity,
  jpegCompress,
  patchMask,
  rainStreaks,
  reflectIndex,
  rotate90,
  saltPepper,
  streakKernel,
} from "./degradations.js";
import { TASK_NAMES, degrade } from "./tasks.js";
import { constantImage, mse, pixel, randomImage, smoothImage } from "./testing.js";

function diffStats(out: RgbImage, inp: RgbImage): { mean: number; std: number } {
  let s = 0, s2 = 0;
  const n = out.data.length;
  for (let i = 0; i < n; i++) {
    const d = out.data[i] - inp.data[i];
    s += d;
    s2 += d * d;
  }
  return { mean: s / n, std: Math.sqrt(s2 / n - (s / n) ** 2) };
}

/** Std of clip(σZ, −a, a) for Z ~ N(0,1), by numerical integration (independent of the sampler). */
function censoredNormalStd(sigma: number, a: number): number {
  const phi = (z: number) => Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI);
  const lim = a / sigma;
  const steps = 20_000;
  const h = (2 * lim) / steps;
  let inner = 0, mass = 0;
  for (let k = 0; k <= steps; k++) {
    const z = -lim + k * h;
    const w = k === 0 || k === steps ? 0.5 : 1;
    inner += w * z * z * phi(z) * h;
    mass += w * phi(z) * h;
  }
  const tail = 1 - mass; // both tails together
  return sigma * Math.sqrt(inner + tail * lim * lim);
}

describe("gaussianNoise", () => {
  it.each([15, 25])("σ = %i measured back from (out − in) on mid-grey within 2 %%", (sigma) => {
    const grey = constantImage(64, 64, 0.5);
    const { mean, std } = diffStats(gaussianNoise(grey, { sigma }, 1), grey);
    expect(Math.abs(std / (sigma / 255) - 1)).toBeLessThan(0.02);
    expect(Math.abs(mean)).toBeLessThan(0.003);
  });

  it("σ = 50 (default) matches the std of a normal clipped to [0,1] within 2 %", () => {
    const grey = constantImage(96, 96, 0.5);
    const out = gaussianNoise(grey, {}, 2);
    const { std } = diffStats(out, grey);
    const expected = censoredNormalStd(50 / 255, 0.5);
    expect(expected).toBeLessThan(50 / 255); // clipping matters at σ = 50
    expect(Math.abs(std / expected - 1)).toBeLessThan(0.02);
    expect(Math.min(...out.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...out.data)).toBeLessThanOrEqual(1);
  });

  it("quantize puts every value on the k/255 grid; σ = 0 is the identity", () => {
    const img = randomImage(8, 8, 3);
    const q = gaussianNoise(img, { sigma: 25, quantize: true }, 4);
    for (const v of q.data) expect(Math.abs(v * 255 - Math.round(v * 255))).toBeLessThan(1e-4);
    expect(gaussianNoise(img, { sigma: 0 }, 4).data).toEqual(img.data);
  });

  it("rejects a negative σ", () => {
    expect(() => gaussianNoise(constantImage(2, 2, 0), { sigma: -1 })).toThrow(/gaussianNoise: sigma/);
  });
});

describe("gaussianBlur", () => {
  /** Reflect (edge not repeated) by repeated mirroring — a different route than reflectIndex. */
  function mirror(i: number, n: number): number {
    if (n === 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
  }
  /** Direct 2-D convolution with the 2-D Gaussian normalised over the whole window. */
  function direct(img: RgbImage, x: number, y: number, ks: number, sigma: number): number[] {
    const r = (ks - 1) / 2;
    let wsum = 0;
    const acc = [0, 0, 0];
    for (let dy = -r; dy <= r; dy++) {
      for (let dx = -r; dx <= r; dx++) {
        const w = Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
        wsum += w;
        const p = pixel(img, mirror(x + dx, img.width), mirror(y + dy, img.height));
        for (let c = 0; c < 3; c++) acc[c] += w * p[c];
      }
    }
    return acc.map((v) => v / wsum);
  }

  it("reflectIndex mirrors without repeating the edge", () => {
    expect([-3, -2, -1, 0, 4, 5, 6, 7].map((i) => reflectIndex(i, 5))).toEqual([3, 2, 1, 0, 4, 3, 2, 1]);
    for (let i = -40; i < 40; i++) expect(reflectIndex(i, 4)).toBe(mirror(i, 4));
  });

  it("default (21, σ 3) equals a direct 2-D convolution at corner, edge and interior pixels", () => {
    const img = randomImage(40, 32, 11);
    const out = gaussianBlur(img);
    expect(out.width).toBe(40);
    expect(out.height).toBe(32);
    for (const [x, y] of [[0, 0], [39, 31], [5, 17], [20, 0], [0, 16], [39, 2], [19, 15]]) {
      const want = direct(img, x, y, 21, 3);
      const got = pixel(out, x, y);
      for (let c = 0; c < 3; c++) expect(Math.abs(got[c] - want[c])).toBeLessThan(1e-5);
    }
  });

  it("handles images smaller than the kernel (repeated reflection)", () => {
    const img = randomImage(6, 5, 12);
    const out = gaussianBlur(img, { kernelSize: 21, sigma: 3 });
    for (const [x, y] of [[0, 0], [5, 4], [3, 2]]) {
      const want = direct(img, x, y, 21, 3);
      const got = pixel(out, x, y);
      for (let c = 0; c < 3; c++) expect(Math.abs(got[c] - want[c])).toBeLessThan(1e-5);
    }
  });

  it("keeps a constant image constant and leaves the input unchanged", () => {
    const img = constantImage(16, 16, 0.3);
    const copy = new Float32Array(img.data);
    const out = gaussianBlur(img, { kernelSize: 7, sigma: 1.2 });
    for (const v of out.data) expect(v).toBeCloseTo(0.3, 6);
    expect(img.data).toEqual(copy);
  });

  it("rejects an even kernel", () => {
    expect(() => gaussianBlur(constantImage(4, 4, 0), { kernelSize: 20 })).toThrow(/kernelSize must be an odd positive integer, got 20/);
  });
});

describe("saltPepper", () => {
  it("changes ≈ ratio of pixels, all channels, to exactly 0 or 1, half each", () => {
    const grey = constantImage(128, 128, 0.5);
    const out = saltPepper(grey, { ratio: 0.1 }, 5);
    const n = 128 * 128;
    let salt = 0, pepper = 0;
    for (let i = 0; i < n; i++) {
      const [r, g, b] = [out.data[3 * i], out.data[3 * i + 1], out.data[3 * i + 2]];
      if (r === 0.5 && g === 0.5 && b === 0.5) continue;
      expect(r === g && g === b).toBe(true);
      expect(r === 0 || r === 1).toBe(true);
      if (r === 1) salt++;
      else pepper++;
    }
    expect(Math.abs((salt + pepper) / n - 0.1)).toBeLessThan(0.01);
    expect(Math.abs(salt / n - 0.05)).toBeLessThan(0.008);
    expect(Math.abs(pepper / n - 0.05)).toBeLessThan(0.008);
  });
});

describe("patchMask", () => {
  /** Per grid patch: "zero" if every value is 0, "same" if equal to the input, else "mixed". */
  function classify(out: RgbImage, inp: RgbImage, patch: number): string[] {
    const res: string[] = [];
    for (let py = 0; py < Math.ceil(inp.height / patch); py++) {
      for (let px = 0; px < Math.ceil(inp.width / patch); px++) {
        let zero = true, same = true;
        for (let y = py * patch; y < Math.min(inp.height, (py + 1) * patch); y++) {
          for (let x = px * patch; x < Math.min(inp.width, (px + 1) * patch); x++) {
            const a = pixel(out, x, y), b = pixel(inp, x, y);
            for (let c = 0; c < 3; c++) {
              if (a[c] !== 0) zero = false;
              if (a[c] !== b[c]) same = false;
            }
          }
        }
        res.push(zero ? "zero" : same ? "same" : "mixed");
      }
    }
    return res;
  }

  it.each([
    [64, 64, 16, 0.25, 4],
    [64, 64, 8, 0.25, 16],
    [70, 50, 16, 0.25, 5], // 5 × 4 grid with cut edge patches
    [32, 32, 4, 0.5, 32],
  ])("%i×%i, patch %i, ratio %f → exactly %i zero patches, the rest untouched", (w, h, patch, ratio, expected) => {
    const img = randomImage(w, h, 21, 0.1, 1);
    const out = patchMask(img, { patch, ratio }, 6);
    const cls = classify(out, img, patch);
    expect(cls.filter((c) => c === "zero").length).toBe(expected);
    expect(cls.filter((c) => c === "mixed").length).toBe(0);
    expect(cls.filter((c) => c === "zero").length / cls.length).toBeCloseTo(ratio, 10);
  });
});

describe("rainStreaks", () => {
  it("only brightens, achromatically", () => {
    const img = smoothImage(48, 48);
    const out = rainStreaks(img, {}, 3);
    let changed = 0;
    for (let i = 0; i < 48 * 48; i++) {
      const d = [0, 1, 2].map((c) => out.data[3 * i + c] - img.data[3 * i + c]);
      for (const v of d) expect(v).toBeGreaterThanOrEqual(0);
      if (d.some((v) => v > 0)) changed++;
    }
    expect(changed).toBeGreaterThan(0);
  });

  it("streakKernel: taps sum to the length and lie along the angle", () => {
    const v = streakKernel(9, 0);
    const side = 2 * v.radius + 1;
    expect(v.taps.reduce((a, b) => a + b, 0)).toBeCloseTo(9, 9);
    // vertical: every tap in the centre column
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) if (x !== v.radius) expect(v.taps[y * side + x]).toBe(0);
    const hz = streakKernel(9, 90);
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) if (y !== hz.radius) expect(hz.taps[y * side + x]).toBeCloseTo(0, 12);
  });

  it("streak orientation and amount of added light are measurable on black", () => {
    const black = constantImage(256, 256, 0);
    const params = { density: 0.003, length: 9, angleJitter: 0, brightness: 1 };
    // Correlation of the streak layer with its neighbour below vs to the right.
    const corr = (img: RgbImage, dx: number, dy: number) => {
      let s = 0;
      for (let y = 0; y < img.height - dy; y++) for (let x = 0; x < img.width - dx; x++) s += pixel(img, x, y)[0] * pixel(img, x + dx, y + dy)[0];
      return s;
    };
    const vert = rainStreaks(black, { ...params, angle: 0 }, 8);
    expect(corr(vert, 0, 1)).toBeGreaterThan(5 * corr(vert, 1, 0));
    const horiz = rainStreaks(black, { ...params, angle: 90 }, 8);
    expect(corr(horiz, 1, 0)).toBeGreaterThan(5 * corr(horiz, 0, 1));
    // Mean added light ≈ density · length · E[U(0.5,1)] · brightness (few overlaps, few streaks cut by the border).
    let mean = 0;
    for (const v of vert.data) mean += v;
    mean /= vert.data.length;
    expect(Math.abs(mean / (0.003 * 9 * 0.75) - 1)).toBeLessThan(0.2);
  });
});

describe("jpegCompress", () => {
  it("lower quality → larger error; output on the uint8 grid", async () => {
    const img = smoothImage(64, 64);
    const q10 = await jpegCompress(img, { quality: 10 });
    const q90 = await jpegCompress(img, { quality: 90 });
    expect(q10.width).toBe(64);
    expect(mse(q10, img)).toBeGreaterThan(2 * mse(q90, img));
    expect(mse(q90, img)).toBeGreaterThan(0);
    for (const v of q10.data) expect(Math.abs(v * 255 - Math.round(v * 255))).toBeLessThan(1e-4);
  });

  it("rejects a bad quality", async () => {
    await expect(jpegCompress(constantImage(2, 2, 0), { quality: 0 })).rejects.toThrow(/quality must be an integer in \[1, 100\], got 0/);
  });
});

describe("spatial operations", () => {
  const img = randomImage(7, 5, 31);

  it("rot90 turns counter-clockwise: the top-right pixel goes to the top-left", () => {
    const r = rotate90(img, 1);
    expect([r.width, r.height]).toEqual([5, 7]);
    expect(pixel(r, 0, 0)).toEqual(pixel(img, 6, 0));
    expect(pixel(r, 4, 0)).toEqual(pixel(img, 6, 4)); // top-right of output ← bottom-right of input
    expect(pixel(r, 0, 6)).toEqual(pixel(img, 0, 0)); // bottom-left of output ← top-left of input
  });

  it("rotations compose", () => {
    const r1 = rotate90(img, 1);
    const r4 = rotate90(rotate90(rotate90(r1, 1), 1), 1);
    expect(r4).toEqual(img);
    expect(rotate90(r1, 1)).toEqual(rotate90(img, 2));
    expect(rotate90(rotate90(img, 2), 1)).toEqual(rotate90(img, 3));
    expect(rotate90(img, -1)).toEqual(rotate90(img, 3));
    expect(rotate90(img, 0)).toEqual(img);
  });

  it("flips are involutions and hflip ∘ vflip = rot180", () => {
    expect(flipHorizontal(flipHorizontal(img))).toEqual(img);
    expect(flipVertical(flipVertical(img))).toEqual(img);
    expect(flipHorizontal(img)).not.toEqual(img);
    expect(pixel(flipHorizontal(img), 0, 2)).toEqual(pixel(img, 6, 2));
    expect(pixel(flipVertical(img), 3, 0)).toEqual(pixel(img, 3, 4));
    expect(flipVertical(flipHorizontal(img))).toEqual(rotate90(img, 2));
  });

  it("identity copies", () => {
    const c = identity(img);
    expect(c).toEqual(img);
    expect(c.data).not.toBe(img.data);
  });

  it("validates the image shape", () => {
    expect(() => rotate90({ width: 2, height: 2, data: new Float32Array(11) })).toThrow(/rotate90: image data has 11 values, expected 2×2×3 = 12/);
  });
});

describe("pinned outputs (goldens)", () => {
  // SHA-256 of the float32 output bytes, computed before the degradations' Rng shared its methods with
  // TrainRng and before gaussianBlur took its taps from @lm4lv/metrics' gaussianKernel: any change to a
  // random stream, a kernel or the arithmetic order shows here. (Math.exp/log/sin/cos are V8's own
  // fdlibm ports, the same on every platform.) JPEG goes through libjpeg and is left out.
  const sha = (a: Float32Array | Float64Array) => createHash("sha256").update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest("hex");

  it("every task on a 40×36 image with seed 7", async () => {
    const want: Record<string, string> = {
      denoise: "b0e9ebcf123a5e2274f9bc7a93001cde3dfc55f207134974c97333e36c5c5df9",
      denoise15: "15114685b79a77e4f065506a3dce6f1772345512e9851b2086b289cb1d885f43",
      denoise25: "50eb3398e1fe5c72ebfd789518cf960727eff4239ace020735a6800b9e4464cf",
      deblur: "e258b2b396ab75235f6c5fa4a2e2102a423a04e3f21950fb41f60218d7aa04a5",
      derain: "a7331b92851493af4944919f8a8340a8290558aa9722e66777bbfb34b9b83c18",
      saltpepper: "b4e0be45cb6cbd23121fc434224999f83d58542d2f1b65d0abcad94ca437cea3",
      mask: "b854307cd2822d5618fd7355f19870e20bbd47aadc5e8ba1f923974d22ab7e53",
      rot90: "3b5581d2ac77740a123309a1f99d49b54886d4ba62ec43fb22d8360a2555dbd1",
      rot180: "c3c1c3f6507c2742d1a300950f0a6aab631f5f0784b9a6ddbd5fd9a644ebb501",
      rot270: "3c09e731c33596a0b4db67c351c256a8db984b4d90e3200ec5f3bec425f77e3a",
      hflip: "ff231978e6d42e4fe8a014515ffe2e1f7c4dd585e9f525d37b5aefd0a5452a37",
      vflip: "f9f8bd6f92bae1fd3d29ef64f5b4da61d617b23852c1e76d6e6ecf6d80b1b476",
      identity: "4dbbeccb3e6b79bdbec95056448b4437db76b841f9996a067b4ff8a5eb88804e",
    };
    const img = smoothImage(40, 36);
    const got: Record<string, string> = {};
    for (const name of TASK_NAMES) if (name !== "jpeg") got[name] = sha((await degrade(name, img, 7)).data);
    expect(got).toEqual(want);
  });

  it("a non-default blur, the test images' generator and the 21-tap kernel", () => {
    expect(sha(gaussianBlur(smoothImage(40, 36), { kernelSize: 7, sigma: 1 }).data)).toBe("639e241601aae9c45fb3c43d5677e0574f6541d153eb608bb6181c80c8355e00");
    expect(sha(randomImage(17, 13, 5).data)).toBe("0ef58577e346c84e885dcd635c3785b038408475cb704e33a43b29511ed0321a");
    expect(sha(gaussianKernel(21, 3))).toBe("9214b961bcba02e5a9e832848bca129463d929d86f26c25ccea970195fdb0665");
  });
});
