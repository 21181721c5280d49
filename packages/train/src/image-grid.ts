/**
 * Image grids (sample sheets): images laid out in rows with white gaps, each
 * optionally captioned with the built-in 3×5 bitmap font. Loss charts are SVG
 * (loss-plot.ts).
 */
import { hconcat, vconcat } from "@lm4lv/core";
import type { RgbImage } from "@lm4lv/core";
import { drawText, GLYPH_HEIGHT } from "./font.js";

const BLACK = [0, 0, 0] as const;
const TEXT_SCALE = 2;

/** A white strip with a caption above an image (caption clipped to the image width). */
function captioned(img: RgbImage, label: string): RgbImage {
  const strip = GLYPH_HEIGHT * TEXT_SCALE + 6;
  const height = img.height + strip;
  const data = new Float32Array(img.width * height * 3).fill(1);
  drawText(data, img.width, height, label, 2, 3, BLACK, TEXT_SCALE);
  data.set(img.data, img.width * strip * 3);
  return { width: img.width, height, data };
}

/**
 * Lays images out in rows (core's hconcat/vconcat, white gaps). `labels`, when
 * given, has the same shape as `rows`; each label is drawn above its image.
 */
export function imageGrid(rows: RgbImage[][], labels?: (string | undefined)[][], gap = 4): RgbImage {
  if (rows.length === 0 || rows.some((r) => r.length === 0)) throw new RangeError("imageGrid: every row needs at least one image");
  if (labels && (labels.length !== rows.length || labels.some((l, i) => l.length !== rows[i].length))) {
    throw new RangeError(`imageGrid: labels shape [${labels.map((l) => l.length)}] does not match rows [${rows.map((r) => r.length)}]`);
  }
  const built = rows.map((row, i) => {
    const cells = labels ? row.map((img, j) => captioned(img, labels[i][j] ?? "")) : row;
    return hconcat(cells, gap);
  });
  return vconcat(built, gap);
}
