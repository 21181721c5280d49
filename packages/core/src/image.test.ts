import { describe, expect, it } from "vitest";
import sharp from "sharp";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chwToHwc, hconcat, hwcToChw, ImageError, joinTiles, listImages, readImage, resizeImage, splitTiles, writeImage } from "./image.js";

const dir = mkdtempSync(join(tmpdir(), "img-"));

describe("image IO", () => {
  it("writes and reads PNG bit-exactly (uint8 values)", async () => {
    const w = 5, h = 3;
    const data = new Float32Array(w * h * 3).map((_, i) => ((i * 37) % 256) / 255);
    await writeImage(join(dir, "a.png"), { width: w, height: h, data });
    const back = await readImage(join(dir, "a.png"));
    expect(back.width).toBe(5);
    expect(back.height).toBe(3);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  it("expands grey to RGB and drops alpha", async () => {
    const grey = Buffer.from([0, 128, 255, 64]);
    await sharp(grey, { raw: { width: 2, height: 2, channels: 1 } }).png().toFile(join(dir, "g.png"));
    const g = await readImage(join(dir, "g.png"));
    expect(Array.from(g.data.slice(0, 6)).map((v) => Math.round(v * 255))).toEqual([0, 0, 0, 128, 128, 128]);
    const rgba = Buffer.from([10, 20, 30, 255, 40, 50, 60, 255]);
    await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } }).png().toFile(join(dir, "a4.png"));
    const a = await readImage(join(dir, "a4.png"));
    expect(Array.from(a.data).map((v) => Math.round(v * 255))).toEqual([10, 20, 30, 40, 50, 60]);
  });

  it("resizes bicubically to the asked size; constant images stay constant", async () => {
    const w = 16, h = 12;
    const data = new Float32Array(w * h * 3).fill(100 / 255);
    await writeImage(join(dir, "c.png"), { width: w, height: h, data });
    const r = await readImage(join(dir, "c.png"), { size: 8 });
    expect([r.width, r.height]).toEqual([8, 8]);
    for (const v of r.data) expect(Math.round(v * 255)).toBe(100);
    const r2 = await resizeImage(r, 4, 6);
    expect([r2.width, r2.height]).toEqual([4, 6]);
  });

  it("gives a clear error for missing and corrupt files", async () => {
    await expect(readImage(join(dir, "missing.png"))).rejects.toThrow(/missing\.png: file not found/);
    writeFileSync(join(dir, "corrupt.png"), Buffer.from("this is not a png"));
    await expect(readImage(join(dir, "corrupt.png"))).rejects.toThrow(/corrupt\.png: cannot read image/);
    await expect(writeImage(join(dir, "x.gifx"), { width: 1, height: 1, data: new Float32Array(3) })).rejects.toThrow(/cannot write images of type/);
  });

  it("converts between HWC and CHW and concatenates", () => {
    const img = { width: 2, height: 1, data: new Float32Array([1, 2, 3, 4, 5, 6]) };
    const chw = hwcToChw(img);
    expect(Array.from(chw)).toEqual([1, 4, 2, 5, 3, 6]);
    expect(Array.from(chwToHwc(chw, 1, 2).data)).toEqual([1, 2, 3, 4, 5, 6]);
    const cat = hconcat([img, img], 1);
    expect(cat.width).toBe(5);
    expect(Array.from(cat.data.slice(0, 15))).toEqual([1, 2, 3, 4, 5, 6, 1, 1, 1, 1, 2, 3, 4, 5, 6]);
  });
});

describe("listImages", () => {
  it("lists a folder's image files by extension, sorted by code point; names the folder of every problem", () => {
    const dir = mkdtempSync(join(tmpdir(), "list-"));
    for (const f of ["b.png", "a.JPG", "B.webp", "notes.txt"]) writeFileSync(join(dir, f), "");
    mkdirSync(join(dir, "sub.png"));
    expect(listImages(dir)).toEqual(["B.webp", "a.JPG", "b.png"]);
    expect(() => listImages(join(dir, "nope"))).toThrow(ImageError);
    expect(() => listImages(join(dir, "nope"))).toThrow(/nope: not a folder/);
    expect(() => listImages(join(dir, "sub.png"))).toThrow(/sub\.png: no image files \(\.png, \.jpg, \.\.\.\)/);
  });
});

describe("splitTiles / joinTiles", () => {
  // pixel (x, y, channel c) of a w×w image holds a value that names it
  const named = (w: number) => ({ width: w, height: w, data: Float32Array.from({ length: w * w * 3 }, (_, i) => i) });
  const at = (img: { width: number; data: Float32Array }, x: number, y: number, c: number) => img.data[(y * img.width + x) * 3 + c];

  it("cuts row by row: tile r·grid + c holds rows r·t… and columns c·t… of the image", () => {
    const img = named(6);
    const tiles = splitTiles(img, 3);
    expect(tiles.map((t) => [t.width, t.height])).toEqual(Array(9).fill([2, 2]));
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) for (let ch = 0; ch < 3; ch++) {
      expect(at(tiles[r * 3 + c], x, y, ch)).toBe(at(img, c * 2 + x, r * 2 + y, ch));
    }
    expect(Array.from(joinTiles(tiles, 3).data)).toEqual(Array.from(img.data));
    expect(splitTiles(img, 1)).toEqual([img]);
  });

  it("rejects shapes that do not tile", () => {
    expect(() => splitTiles(named(6), 4)).toThrow("splitTiles: a 6×6 image does not split into 4×4 equal square tiles");
    expect(() => splitTiles({ width: 4, height: 2, data: new Float32Array(24) }, 2)).toThrow("a 4×2 image does not split");
    expect(() => splitTiles(named(4), 0)).toThrow("grid must be a positive integer, got 0");
    expect(() => joinTiles(splitTiles(named(4), 2).slice(1), 2)).toThrow("joinTiles: expected 2×2 tiles, got 3");
    const tiles = splitTiles(named(4), 2);
    tiles[2] = named(3);
    expect(() => joinTiles(tiles, 2)).toThrow("joinTiles: tile 2 is 3×3, tile 0 is 2×2");
  });
});
