/**
 * Photo crops for training the small MAE, from Debian wallpaper/sample-image packages.
 *
 *   pnpm --filter @lm4lv/data-tools photos [--cache DIR] [--seed N] [--size 64] [--crops-per-image 64]
 *                                          [--val-fraction 0.1] [--min-scale 128] [--max-scale 256]
 *
 * 1. `apt-get download` + `dpkg-deb -x` each package of SOURCES into <cache>/pkgs/<pkg>.
 * 2. Keep the photographs listed in SOURCES (chosen by looking at every image: drawings, renders,
 *    logos, paintings and SVGs are left out), JPEG/PNG with both sides >= 256 px; write
 *    <cache>/photos.json with path, package, licence (from the package's copyright file), size.
 * 3. Split the photos (not the crops) into train/val with the seed, then for each photo draw
 *    random crops: downscale so the short side is a random S in [min-scale, max-scale], cut a
 *    size×size window at a random place, skip near-flat windows (pixel std < 0.02), write PNG to
 *    <cache>/crops[-<size>]/{train,val}/ and list them in its manifest.json.
 * scikit-image's sample photos are NOT used here: they are the held-out test set (test-images.ts).
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, extname, join, relative } from "node:path";
import sharp from "sharp";
import { writeFileAtomic } from "@lm4lv/core";
import { z } from "zod";
import { positiveInt } from "@lm4lv/core";
import {
  aptCandidate, cacheOption, debFileName, fetchDebianPackage, fraction, isMain, licenceOf, makeRng, parseCommandLine, readCopyright,
  runScript, shuffled, usageText,
} from "./common.js";

export interface PhotoSource {
  /** Debian binary package. */
  package: string;
  /** Folder inside the package holding the photos. */
  dir: string;
  /** The photos (paths relative to `dir`). */
  files: string[];
  /** Path of `dir` in the source tree, as the copyright file names it. */
  sourceDir: (file: string) => string;
  note?: string;
}

const PLASMA_PHOTOS = [
  "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
  "OneStandsOut", "Path", "summer_1am",
];

export const SOURCES: PhotoSource[] = [
  {
    package: "lomiri-wallpapers-16.04",
    dir: "usr/share/backgrounds",
    // analogpattern_by_Peter_Nerlich.jpg is left out (an abstract texture, not a scene).
    files: [
      "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg",
      "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg", "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg",
      "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
      "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg", "umang_by_Abhishek_Mudgal.jpg",
    ],
    sourceDir: (f) => `16.04/${f}`,
  },
  {
    package: "lomiri-wallpapers-20.04",
    dir: "usr/share/backgrounds",
    // The three others (Fossa, Infinite-Sea, Painting-Colors) are illustrations.
    files: ["Kleiber_by_Lukas_Baubkus.jpg"],
    sourceDir: (f) => `20.04/${f}`,
  },
  {
    package: "mate-backgrounds",
    dir: "usr/share/backgrounds/mate/nature",
    files: [
      "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg", "LadyBird.jpg",
      "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg",
    ],
    sourceDir: (f) => `nature/${f}`,
  },
  {
    package: "plasma-workspace-wallpapers",
    dir: "usr/share/wallpapers",
    // One file per wallpaper: its largest image (picked at run time, see resolveFiles).
    files: PLASMA_PHOTOS,
    sourceDir: (f) => `wallpapers/${f}`,
    note: "each wallpaper's metadata.json says License: LGPLv3 (Debian's copyright file: GPL-2+ for all files)",
  },
  {
    package: "opencv-doc",
    dir: "usr/share/doc/opencv-doc/examples/data",
    // OpenCV's sample photos; drawings (HappyFish, pca_test1), logos, charts, calibration boards,
    // renders (Blender_Suzanne*), a painting (starry_night), a portrait of a named person (messi5)
    // and second views of a stereo/flow pair are left out.
    files: [
      "fruits.jpg", "baboon.jpg", "leuvenA.jpg", "squirrel_cls.jpg", "home.jpg", "aloeL.jpg", "board.jpg", "orange.jpg",
      "butterfly.jpg", "building.jpg", "apple.jpg", "aero1.jpg", "stuff.jpg", "smarties.png", "basketball1.png",
      "rubberwhale1.png", "graf1.png", "box_in_scene.png", "ela_original.jpg", "chicky_512.png", "blox.jpg",
    ],
    sourceDir: (f) => `samples/data/${f}`,
    note: "OpenCV sample images, covered by the Files: * stanza of opencv's copyright file",
  },
];

export interface PhotoEntry {
  id: string;
  /** Path relative to the cache folder. */
  path: string;
  package: string;
  packageVersion: string;
  deb: string;
  /** Path inside the package. */
  file: string;
  licence: string;
  copyright: string;
  copyrightStanza: string;
  note?: string;
  width: number;
  height: number;
}

const MIN_SIDE = 256;

/** Photos of one source as paths relative to the package root. */
function resolveFiles(src: PhotoSource, root: string): { file: string; sourcePath: string }[] {
  if (src.package !== "plasma-workspace-wallpapers") {
    return src.files.map((f) => ({ file: join(src.dir, f), sourcePath: src.sourceDir(f) }));
  }
  return src.files.map((name) => {
    const images = join(root, src.dir, name, "contents/images");
    if (!existsSync(images)) throw new Error(`plasma-workspace-wallpapers: no ${src.dir}/${name}/contents/images`);
    const files = readdirSync(images).filter((f) => /\.(jpe?g|png)$/i.test(f));
    const largest = files.sort((a, b) => statSync(join(images, b)).size - statSync(join(images, a)).size)[0];
    const rel = `${name}/contents/images/${largest}`;
    return { file: join(src.dir, rel), sourcePath: src.sourceDir(rel) };
  });
}

const slug = (s: string) => s.replace(/\.[a-z]+$/i, "").replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "").toLowerCase();

export async function gatherPhotos(cache: string): Promise<PhotoEntry[]> {
  const photos: PhotoEntry[] = [];
  for (const src of SOURCES) {
    const version = aptCandidate(src.package);
    if (!version) {
      console.warn(`skip ${src.package}: apt knows no such package (apt-cache policy)`);
      continue;
    }
    const root = fetchDebianPackage(src.package, cache);
    const copyright = readCopyright(root, src.package);
    let kept = 0;
    for (const { file, sourcePath } of resolveFiles(src, root)) {
      const abs = join(root, file);
      if (!existsSync(abs)) {
        console.warn(`${src.package}: ${file} is missing (package changed?); skipped`);
        continue;
      }
      if (![".jpg", ".jpeg", ".png"].includes(extname(abs).toLowerCase())) continue;
      const meta = await sharp(abs).metadata();
      const width = meta.autoOrient?.width ?? meta.width ?? 0;
      const height = meta.autoOrient?.height ?? meta.height ?? 0;
      if (Math.min(width, height) < MIN_SIDE) {
        console.warn(`${src.package}: ${file} is ${width}×${height}, below ${MIN_SIDE} px; skipped`);
        continue;
      }
      const lic = licenceOf(copyright, sourcePath);
      const name = src.package === "plasma-workspace-wallpapers" ? sourcePath.split("/")[1] : basename(file);
      photos.push({
        id: `${slug(src.package)}--${slug(name)}`,
        path: relative(cache, abs),
        package: src.package,
        packageVersion: version,
        deb: debFileName(src.package, cache) ?? "",
        file: `/${file}`,
        licence: lic.licence,
        copyright: lic.copyright,
        copyrightStanza: lic.stanza,
        ...(src.note ? { note: src.note } : {}),
        width,
        height,
      });
      kept++;
    }
    console.log(`${src.package} ${version}: ${kept} photos`);
  }
  return photos;
}

/** The options of `photos`: the one place each default lives. */
export const PHOTOS_OPTIONS = z.object({
  cache: cacheOption(),
  seed: z.number("expected an integer").int("expected an integer").default(1234).describe("seed of the split and the crops"),
  size: positiveInt().default(64).describe("side of the square crops (px)"),
  cropsPerImage: positiveInt().default(64).describe("crops drawn from each photo"),
  valFraction: fraction().default(0.1).describe("share of the photos held out for validation"),
  minScale: positiveInt().default(128).describe("smallest short side a photo is shrunk to (px)"),
  maxScale: positiveInt().default(256).describe("largest short side a photo is shrunk to (px)"),
});

export type PhotosOptions = z.output<typeof PHOTOS_OPTIONS>;

/** How the crops are drawn (written to the crops' manifest.json). */
export type CropOptions = Omit<PhotosOptions, "cache">;

const USAGE = usageText("usage: pnpm --filter @lm4lv/data-tools photos [-- options]", PHOTOS_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parsePhotosOptions(argv: string[]): PhotosOptions | undefined {
  const { options, help } = parseCommandLine(argv, PHOTOS_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

export interface CropEntry {
  file: string;
  split: "train" | "val";
  photo: string;
  /** Short side the photo was downscaled to, and the window's top-left corner there. */
  scale: number;
  x: number;
  y: number;
}

/** Downscaled copy of a photo (short side `short`), RGB uint8. */
async function downscale(path: string, short: number): Promise<{ data: Buffer; width: number; height: number }> {
  const meta = await sharp(path).rotate().metadata();
  const w = meta.autoOrient?.width ?? meta.width!;
  const h = meta.autoOrient?.height ?? meta.height!;
  const k = short / Math.min(w, h);
  const { data, info } = await sharp(path)
    .rotate()
    .removeAlpha()
    .toColourspace("srgb")
    .resize(Math.max(short, Math.round(w * k)), Math.max(short, Math.round(h * k)), { kernel: "lanczos3", fit: "fill" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${path}: expected 3 channels after conversion, got ${info.channels}`);
  return { data, width: info.width, height: info.height };
}

function stdOf(rgb: Buffer, width: number, x: number, y: number, size: number): number {
  let sum = 0;
  let sq = 0;
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size * 3; c++) {
      const v = rgb[((y + r) * width + x) * 3 + c] / 255;
      sum += v;
      sq += v * v;
    }
  }
  const n = size * size * 3;
  return Math.sqrt(Math.max(0, sq / n - (sum / n) ** 2));
}

export async function makeCrops(cache: string, photos: PhotoEntry[], o: CropOptions): Promise<CropEntry[]> {
  if (o.minScale < o.size || o.maxScale < o.minScale) throw new Error(`--min-scale/--max-scale must satisfy size ${o.size} <= min <= max`);
  const rng = makeRng(o.seed);
  const order = shuffled(photos.map((p) => p.id).sort(), rng);
  const numVal = Math.max(1, Math.round(order.length * o.valFraction));
  const valIds = new Set(order.slice(0, numVal));
  const outDir = join(cache, o.size === 64 ? "crops" : `crops-${o.size}`);
  rmSync(outDir, { recursive: true, force: true });
  for (const split of ["train", "val"]) mkdirSync(join(outDir, split), { recursive: true });

  const crops: CropEntry[] = [];
  for (const photo of [...photos].sort((a, b) => a.id.localeCompare(b.id))) {
    const split = valIds.has(photo.id) ? "val" : "train";
    // A base copy with short side maxScale; every crop's scale is drawn from it.
    const base = await downscale(join(cache, photo.path), o.maxScale);
    let made = 0;
    for (let attempt = 0; made < o.cropsPerImage && attempt < o.cropsPerImage * 4; attempt++) {
      const scale = o.minScale + Math.floor(rng() * (o.maxScale - o.minScale + 1));
      const k = scale / Math.min(base.width, base.height);
      const w = Math.max(scale, Math.round(base.width * k));
      const h = Math.max(scale, Math.round(base.height * k));
      const x = Math.floor(rng() * (w - o.size + 1));
      const y = Math.floor(rng() * (h - o.size + 1));
      const scaled = await sharp(base.data, { raw: { width: base.width, height: base.height, channels: 3 } })
        .resize(w, h, { kernel: "lanczos3", fit: "fill" })
        .raw()
        .toBuffer();
      if (stdOf(scaled, w, x, y, o.size) < 0.02) continue; // a flat patch of sky or shadow
      const png = await sharp(scaled, { raw: { width: w, height: h, channels: 3 } })
        .extract({ left: x, top: y, width: o.size, height: o.size })
        .png()
        .toBuffer();
      const file = `${split}/${photo.id}--${String(made).padStart(4, "0")}.png`;
      writeFileSync(join(outDir, file), png);
      crops.push({ file, split, photo: photo.id, scale, x, y });
      made++;
    }
  }
  writeFileAtomic(join(outDir, "manifest.json"), JSON.stringify({ options: o, valPhotos: [...valIds].sort(), crops }, null, 1) + "\n");
  return crops;
}

async function main(): Promise<void> {
  const parsed = parsePhotosOptions(process.argv.slice(2));
  if (!parsed) return console.log(USAGE);
  const { cache, ...options } = parsed;
  mkdirSync(cache, { recursive: true });
  const photos = await gatherPhotos(cache);
  if (photos.length === 0) throw new Error("no photos found");
  writeFileAtomic(join(cache, "photos.json"), JSON.stringify(photos, null, 1) + "\n");
  console.log(`${photos.length} photos → ${join(cache, "photos.json")}`);
  const crops = await makeCrops(cache, photos, options);
  const n = (s: string) => crops.filter((c) => c.split === s).length;
  console.log(`${crops.length} crops of ${options.size}×${options.size}: ${n("train")} train, ${n("val")} val`);
}

if (isMain("photos")) runScript(main, USAGE);
