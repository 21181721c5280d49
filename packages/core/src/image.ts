/**
 * Image IO with sharp. In memory an image is `RgbImage`: height × width × 3,
 * interleaved (HWC), float32 in [0, 1]. Grey images are expanded to RGB and
 * alpha is composited over black (as PIL's convert("RGB") drops it).
 */
import sharp from "sharp";
import { existsSync, readdirSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { writeFileAtomic } from "./fsutil.js";

export interface RgbImage {
  width: number;
  height: number;
  /** HWC, float32 in [0, 1]. */
  data: Float32Array;
}

export class ImageError extends Error {}

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif"];

export function isImagePath(p: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(p).toLowerCase());
}

/**
 * The image files of a folder (by extension), sorted by name (code-point order, locale-independent).
 * A missing folder, one that cannot be listed and one without images are ImageErrors naming it.
 */
export function listImages(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ImageError(`${dir}: not a folder`);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    throw new ImageError(`${dir}: cannot list (${(e as Error).message})`);
  }
  const names = entries.filter((n) => isImagePath(n) && statSync(join(dir, n)).isFile()).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length === 0) throw new ImageError(`${dir}: no image files (.png, .jpg, ...)`);
  return names;
}

async function decode(input: string | Buffer, label: string, resize?: { width: number; height: number }): Promise<RgbImage> {
  if (typeof input === "string" && !existsSync(input)) throw new ImageError(`${label}: file not found`);
  try {
    let pipe = sharp(input, { failOn: "error" }).rotate().removeAlpha().toColourspace("srgb");
    if (resize) pipe = pipe.resize(resize.width, resize.height, { kernel: "cubic", fit: "fill" });
    const { data, info } = await pipe.raw().toBuffer({ resolveWithObject: true });
    const { width, height, channels } = info;
    const out = new Float32Array(width * height * 3);
    for (let i = 0, j = 0; i < width * height; i++, j += channels) {
      out[3 * i] = data[j] / 255;
      out[3 * i + 1] = data[j + (channels >= 3 ? 1 : 0)] / 255;
      out[3 * i + 2] = data[j + (channels >= 3 ? 2 : 0)] / 255;
    }
    return { width, height, data: out };
  } catch (e) {
    throw new ImageError(`${label}: cannot read image (${(e as Error).message})`);
  }
}

/** Reads any format sharp knows (PNG, JPEG, WebP, TIFF, GIF, AVIF, ...) as RGB in [0,1]; optional bicubic resize. */
export async function readImage(path: string, opts: { size?: number | { width: number; height: number } } = {}): Promise<RgbImage> {
  const size = typeof opts.size === "number" ? { width: opts.size, height: opts.size } : opts.size;
  return decode(path, path, size);
}

/** Decodes an encoded image held in memory. */
export async function decodeImage(bytes: Buffer, opts: { size?: number | { width: number; height: number }; label?: string } = {}): Promise<RgbImage> {
  const size = typeof opts.size === "number" ? { width: opts.size, height: opts.size } : opts.size;
  return decode(bytes, opts.label ?? "<buffer>", size);
}

/** [0,1] float → uint8 with clamp and round (as transformers.js and torchvision do). */
export function toUint8(img: RgbImage): Uint8Array {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < img.data.length; i++) out[i] = Math.round(Math.min(1, Math.max(0, img.data[i])) * 255);
  return out;
}

export function fromUint8(data: Uint8Array, width: number, height: number): RgbImage {
  if (data.length !== width * height * 3) throw new ImageError(`fromUint8: ${data.length} bytes for ${width}×${height}×3`);
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] / 255;
  return { width, height, data: out };
}

/** Bicubic resize (sharp's cubic kernel) of an in-memory image; values go through uint8. */
export async function resizeImage(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  const { data, info } = await sharp(Buffer.from(toUint8(img)), { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { kernel: "cubic", fit: "fill" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return fromUint8(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height);
}

export type ImageFormat = "png" | "jpeg" | "webp";

/** Encodes an image in memory (PNG lossless; JPEG/WebP at `quality`, default 95). */
export async function encodeImage(img: RgbImage, opts: { format?: ImageFormat; quality?: number } = {}): Promise<Buffer> {
  const format = opts.format ?? "png";
  let pipe = sharp(Buffer.from(toUint8(img)), { raw: { width: img.width, height: img.height, channels: 3 } });
  if (format === "jpeg") pipe = pipe.jpeg({ quality: opts.quality ?? 95 });
  else if (format === "webp") pipe = pipe.webp({ quality: opts.quality ?? 95 });
  else pipe = pipe.png();
  return pipe.toBuffer();
}

/** Encodes to PNG (default) or JPEG/WebP by the path's extension, written atomically. */
export async function writeImage(path: string, img: RgbImage, opts: { quality?: number } = {}): Promise<void> {
  const ext = extname(path).toLowerCase();
  const format: ImageFormat | undefined =
    ext === ".jpg" || ext === ".jpeg" ? "jpeg" : ext === ".png" || ext === "" ? "png" : ext === ".webp" ? "webp" : undefined;
  if (!format) throw new ImageError(`${path}: cannot write images of type ${ext} (use .png, .jpg or .webp)`);
  writeFileAtomic(path, await encodeImage(img, { format, quality: opts.quality }));
}

/** HWC [0,1] → CHW Float32Array. */
export function hwcToChw(img: RgbImage): Float32Array {
  const { width: w, height: h, data } = img;
  const out = new Float32Array(3 * h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) out[c * h * w + y * w + x] = data[(y * w + x) * 3 + c];
  return out;
}

/** CHW → HWC image. */
export function chwToHwc(chw: Float32Array | ArrayLike<number>, height: number, width: number): RgbImage {
  if (chw.length !== 3 * height * width) throw new ImageError(`chwToHwc: ${chw.length} values for 3×${height}×${width}`);
  const out = new Float32Array(3 * height * width);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = chw[c * height * width + y * width + x];
  return { width, height, data: out };
}

/** Places images side by side (same height), with a gap of `gap` white pixels. */
export function hconcat(images: RgbImage[], gap = 4): RgbImage {
  const height = Math.max(...images.map((i) => i.height));
  const width = images.reduce((a, i) => a + i.width, 0) + gap * (images.length - 1);
  const data = new Float32Array(width * height * 3).fill(1);
  let x0 = 0;
  for (const im of images) {
    for (let y = 0; y < im.height; y++) data.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), (y * width + x0) * 3);
    x0 += im.width + gap;
  }
  return { width, height, data };
}

/** Stacks rows of images vertically. */
export function vconcat(images: RgbImage[], gap = 4): RgbImage {
  const width = Math.max(...images.map((i) => i.width));
  const height = images.reduce((a, i) => a + i.height, 0) + gap * (images.length - 1);
  const data = new Float32Array(width * height * 3).fill(1);
  let y0 = 0;
  for (const im of images) {
    for (let y = 0; y < im.height; y++) data.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), ((y0 + y) * width) * 3);
    y0 += im.height + gap;
  }
  return { width, height, data };
}

/**
 * Cuts an image into a `grid` × `grid` array of equal square tiles, row by row (tile r·grid + c
 * covers rows r·t … and columns c·t … with t = size / grid). The image must be square with a side
 * divisible by `grid`.
 */
export function splitTiles(img: RgbImage, grid: number): RgbImage[] {
  if (!Number.isInteger(grid) || grid < 1) throw new ImageError(`splitTiles: grid must be a positive integer, got ${grid}`);
  const { width: w, height: h } = img;
  if (w !== h || w % grid !== 0) throw new ImageError(`splitTiles: a ${w}×${h} image does not split into ${grid}×${grid} equal square tiles`);
  if (grid === 1) return [img];
  const t = w / grid;
  const tiles: RgbImage[] = [];
  for (let r = 0; r < grid; r++) {
    for (let c = 0; c < grid; c++) {
      const data = new Float32Array(t * t * 3);
      for (let y = 0; y < t; y++) data.set(img.data.subarray(((r * t + y) * w + c * t) * 3, ((r * t + y) * w + (c + 1) * t) * 3), y * t * 3);
      tiles.push({ width: t, height: t, data });
    }
  }
  return tiles;
}

/** The inverse of `splitTiles`: `grid`² equal square tiles, row by row → one image. */
export function joinTiles(tiles: readonly RgbImage[], grid: number): RgbImage {
  if (!Number.isInteger(grid) || grid < 1 || tiles.length !== grid * grid) throw new ImageError(`joinTiles: expected ${grid}×${grid} tiles, got ${tiles.length}`);
  if (grid === 1) return tiles[0];
  const t = tiles[0].width;
  tiles.forEach((tile, i) => {
    if (tile.width !== t || tile.height !== t) throw new ImageError(`joinTiles: tile ${i} is ${tile.width}×${tile.height}, tile 0 is ${t}×${t}`);
  });
  const w = t * grid;
  const data = new Float32Array(w * w * 3);
  tiles.forEach((tile, i) => {
    const r = Math.floor(i / grid), c = i % grid;
    for (let y = 0; y < t; y++) data.set(tile.data.subarray(y * t * 3, (y + 1) * t * 3), ((r * t + y) * w + c * t) * 3);
  });
  return { width: w, height: w, data };
}
