/**
 * Tiles of the photo crops, for a vision module that sees part of an image (tiled LM4LV):
 *
 *   pnpm --filter @lm4lv/data-tools tiles [-- --grid 2 --from crops]
 *
 * Every crop of `<cache>/<from>/{train,val}` is cut into grid × grid equal square tiles (row by row,
 * `@lm4lv/core`'s splitTiles, the cut LM4LV makes at inference), written as PNG to
 * `<cache>/<from>-tiles<grid>/{train,val}/<crop>--t<k>.png`. The tiles keep their crop's split and
 * its photo's scale, so they are what a tiled model meets on a 64 px image.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { z } from "zod";
import { encodeImage, listImages, positiveInt, readImage, splitTiles, writeFileAtomic } from "@lm4lv/core";
import { cacheOption, isMain, parseCommandLine, runScript, usageText } from "./common.js";

/** The options of `tiles`: the one place each default lives. */
export const TILES_OPTIONS = z.object({
  cache: cacheOption(),
  from: z.string().default("crops").describe("folder of the cache holding train/ and val/ crops"),
  grid: positiveInt().default(2).describe("tiles per side"),
});

export type TilesOptions = z.output<typeof TILES_OPTIONS>;

const USAGE = usageText("usage: pnpm --filter @lm4lv/data-tools tiles [-- options]", TILES_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parseTilesOptions(argv: string[]): TilesOptions | undefined {
  const { options, help } = parseCommandLine(argv, TILES_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

/**
 * Cuts every image of `<cache>/<from>/{train,val}` into tiles; returns the folder written and the counts.
 * The tiles are written into `<dir>.tmp` (plain writes: hundreds of thousands of small files, an fsync each
 * would dominate) and the folder is renamed into place once its manifest is written, so `<dir>` is either
 * complete or absent.
 */
export async function makeTiles(o: TilesOptions): Promise<{ dir: string; train: number; val: number }> {
  const src = join(o.cache, o.from);
  const dir = join(o.cache, `${o.from}-tiles${o.grid}`);
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const counts = { train: 0, val: 0 };
  for (const split of ["train", "val"] as const) {
    const names = listImages(join(src, split));
    mkdirSync(join(tmp, split), { recursive: true });
    for (const name of names) {
      const tiles = splitTiles(await readImage(join(src, split, name)), o.grid);
      const stem = basename(name, extname(name));
      const pngs = await Promise.all(tiles.map((tile) => encodeImage(tile))); // one crop's tiles at once
      for (const [k, png] of pngs.entries()) writeFileSync(join(tmp, split, `${stem}--t${k}.png`), png);
      counts[split] += tiles.length;
    }
  }
  writeFileAtomic(join(tmp, "manifest.json"), JSON.stringify({ from: o.from, grid: o.grid, ...counts }, null, 1) + "\n");
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return { dir, ...counts };
}

async function main(): Promise<void> {
  const options = parseTilesOptions(process.argv.slice(2));
  if (!options) return console.log(USAGE);
  const r = await makeTiles(options);
  console.log(`${r.train + r.val} tiles (${options.grid}×${options.grid} per crop): ${r.train} train, ${r.val} val → ${r.dir}`);
}

if (isMain("tiles")) runScript(main, USAGE);
