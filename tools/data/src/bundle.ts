/**
 * Picks a small, redistributable training set for the repository (assets/train-images/):
 * crops of the `train` split made by `photos`, only from photos under CC0 / CC-BY / CC-BY-SA
 * licences (attribution recorded in the folder's README), a few crops per photo.
 *
 *   pnpm --filter @lm4lv/data-tools bundle [--per-photo 10] [--cache .cache/data] [--out assets/train-images]
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { positiveInt } from "@lm4lv/core";
import { cacheOption, isMain, parseCommandLine, repoRoot, runScript, usageText } from "./common.js";

interface Photo { id: string; package: string; file: string; licence: string; copyright: string }
interface Crop { file: string; split: string; photo: string }

const ALLOWED = /^(CC0|CC-BY-4\.0|CC-BY-SA-4\.0|CC-BY-SA-3\.0)/;

/** The options of `bundle`: the one place each default lives. */
export const BUNDLE_OPTIONS = z.object({
  perPhoto: positiveInt().default(10).describe("crops taken from each photo"),
  cache: cacheOption(),
  out: z.string().default(() => join(repoRoot(), "assets/train-images")).describe("output folder"),
});

export type BundleOptions = z.output<typeof BUNDLE_OPTIONS>;

const USAGE = usageText("usage: pnpm --filter @lm4lv/data-tools bundle [-- options]", BUNDLE_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parseBundleOptions(argv: string[]): BundleOptions | undefined {
  const { options, help } = parseCommandLine(argv, BUNDLE_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

function main(): void {
  const options = parseBundleOptions(process.argv.slice(2));
  if (!options) return console.log(USAGE);
  const cache = resolve(options.cache);
  const out = resolve(options.out);
  const perPhoto = options.perPhoto;
  const photosPath = join(cache, "photos.json");
  const cropsPath = join(cache, "crops/manifest.json");
  for (const p of [photosPath, cropsPath]) if (!existsSync(p)) throw new Error(`${p} not found: run \`pnpm --filter @lm4lv/data-tools photos\` first`);
  const photos: Photo[] = JSON.parse(readFileSync(photosPath, "utf8"));
  const crops: Crop[] = JSON.parse(readFileSync(cropsPath, "utf8")).crops;
  const ok = new Map(photos.filter((p) => ALLOWED.test(p.licence)).map((p) => [p.id, p]));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const rows: string[] = [];
  let n = 0;
  for (const [id, photo] of [...ok.entries()].sort()) {
    const mine = crops.filter((c) => c.split === "train" && c.photo === id).slice(0, perPhoto);
    for (const c of mine) {
      const name = c.file.split("/").pop()!;
      copyFileSync(join(cache, "crops", c.file), join(out, name));
      n++;
    }
    if (mine.length) rows.push(`| ${id} | ${mine.length} | ${photo.package} \`${photo.file}\` | ${photo.copyright} | ${photo.licence} |`);
  }
  writeFileSync(
    join(out, "README.md"),
    `# Bundled training images

${n} crops of 64×64 px used by \`pnpm train\` (no arguments) to train a denoising adapter set in a few
minutes. Made by \`pnpm --filter @lm4lv/data-tools bundle\` from the \`train\` split of
\`pnpm --filter @lm4lv/data-tools photos\` (each photo shrunk to a random short side of 128–256 px, then a
random 64×64 window; see tools/data/README.md). Only photos under CC0, CC-BY or CC-BY-SA licences are
used; none of them is a validation or test photo. These crops are adaptations of the photos below and are
distributed under the same licence as their photo, with the attribution given here.

| photo id | crops | source (Debian package, file) | copyright | licence |
| --- | --- | --- | --- | --- |
${rows.join("\n")}
`,
  );
  console.log(`${n} crops from ${rows.length} photos → ${out}`);
}

if (isMain("bundle")) runScript(main, USAGE);
