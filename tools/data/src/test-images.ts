/**
 * The committed test set: assets/test-images/*.png at the repo root.
 *
 *   pnpm --filter @lm4lv/data-tools test-images [--cache DIR] [--size 64]
 *
 * Twelve public-domain / CC0 photographs shipped in scikit-image's data folder (Debian package
 * python3-skimage), each centre-cropped to a square and resized to size×size (bicubic), plus a
 * README.md listing source and licence. These photos are never used for training: photos.ts does
 * not read python3-skimage at all.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { decodeImage, writeFileAtomic, writeImage } from "@lm4lv/core";
import { z } from "zod";
import { positiveInt } from "@lm4lv/core";
import { aptCandidate, cacheOption, fetchDebianPackage, isMain, parseCommandLine, repoRoot, runScript, usageText } from "./common.js";

const PACKAGE = "python3-skimage";
const DATA_DIR = "usr/lib/python3/dist-packages/skimage/data";

/** Licence of each image as stated in its loader's docstring in skimage/data/_fetchers.py. */
export const TEST_IMAGES: { file: string; name: string; what: string; licence: string }[] = [
  { file: "astronaut.png", name: "astronaut", what: "astronaut Eileen Collins (NASA)", licence: "public domain" },
  { file: "coffee.png", name: "coffee", what: "coffee cup (photo: Rachel Michetti)", licence: "CC0" },
  { file: "chelsea.png", name: "chelsea", what: "Chelsea the cat (photo: Stefan van der Walt)", licence: "CC0" },
  { file: "rocket.jpg", name: "rocket", what: "Falcon 9 / DSCOVR launch (SpaceX)", licence: "public domain" },
  { file: "hubble_deep_field.jpg", name: "hubble_deep_field", what: "Hubble eXtreme Deep Field (NASA)", licence: "public domain" },
  { file: "retina.jpg", name: "retina", what: "fundus photograph (Mikael Häggström)", licence: "CC0 1.0" },
  { file: "camera.png", name: "camera", what: "man with a camera, grey (photo: Lav Varshney)", licence: "CC0" },
  { file: "clock_motion.png", name: "clock", what: "motion-blurred wall clock, grey (photo: Stefan van der Walt)", licence: "public domain" },
  { file: "brick.png", name: "brick", what: "brick wall, grey (CC0Textures Bricks25)", licence: "CC0" },
  { file: "grass.png", name: "grass", what: "grass, grey (DeviantArt linolafett Grass-01)", licence: "CC0" },
  { file: "gravel.png", name: "gravel", what: "gravel, grey (CC0Textures Gravel04)", licence: "CC0" },
  { file: "cell.png", name: "cell", what: "quantitative phase image of a cell, grey (Paul Müller et al.)", licence: "CC0" },
];

/** The options of `test-images`: the one place each default lives. */
export const TEST_IMAGES_OPTIONS = z.object({
  cache: cacheOption(),
  size: positiveInt().default(64).describe("side of the square test images (px)"),
});

export type TestImagesOptions = z.output<typeof TEST_IMAGES_OPTIONS>;

const USAGE = usageText("usage: pnpm --filter @lm4lv/data-tools test-images [-- options]", TEST_IMAGES_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parseTestImagesOptions(argv: string[]): TestImagesOptions | undefined {
  const { options, help } = parseCommandLine(argv, TEST_IMAGES_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

async function main(): Promise<void> {
  const options = parseTestImagesOptions(process.argv.slice(2));
  if (!options) return console.log(USAGE);
  const root = repoRoot();
  const { cache, size } = options;
  const version = aptCandidate(PACKAGE);
  if (!version) throw new Error(`${PACKAGE}: apt knows no such package (run 'apt-get update' once?)`);
  const pkgRoot = fetchDebianPackage(PACKAGE, cache);
  const out = join(root, "assets/test-images");
  mkdirSync(out, { recursive: true });
  const rows: string[] = [];
  for (const img of TEST_IMAGES) {
    const src = join(pkgRoot, DATA_DIR, img.file);
    const meta = await sharp(src).metadata();
    const side = Math.min(meta.width!, meta.height!);
    const left = Math.floor((meta.width! - side) / 2);
    const top = Math.floor((meta.height! - side) / 2);
    // Centre square, losslessly re-encoded, then core's bicubic resize to size×size RGB.
    const square = await sharp(src).extract({ left, top, width: side, height: side }).png().toBuffer();
    const rgb = await decodeImage(square, { size, label: src });
    await writeImage(join(out, `${img.name}.png`), rgb);
    rows.push(`| ${img.name}.png | ${img.what} | \`/${DATA_DIR}/${img.file}\` (${meta.width}×${meta.height}) | ${img.licence} |`);
  }
  const readme = `# Test images

${TEST_IMAGES.length} photographs, ${size}×${size} RGB PNG: the centre square of each source image, resized
with a bicubic filter (grey sources are stored as RGB). Made by \`pnpm --filter @lm4lv/data-tools test-images\`
from the Debian package \`${PACKAGE}\` ${version} (scikit-image's sample data).

**Held out:** none of these photos is used to train lm4lv's models; the training crops
(\`pnpm --filter @lm4lv/data-tools photos\`) come from other packages and never read \`${PACKAGE}\`.

The licence of each image is the one stated by scikit-image in the docstring of its loader
(\`skimage/data/_fetchers.py\`): public domain or CC0 for all twelve. The package's code is BSD-3-Clause
(\`/usr/share/doc/${PACKAGE}/copyright\`).

| file | what | source (in ${PACKAGE}) | licence |
| --- | --- | --- | --- |
${rows.join("\n")}
`;
  writeFileAtomic(join(out, "README.md"), readme);
  console.log(`${TEST_IMAGES.length} test images → ${out}`);
}

if (isMain("test-images")) runScript(main, USAGE);
