/**
 * Loss curves and image grids drawn into RGB buffers (no chart library):
 * axes, ticks with labels (3×5 bitmap font), grid lines, one polyline per series,
 * and a legend. Written with core's writeImage (PNG, atomic).
 */
import { hconcat, vconcat, writeImage } from "@lm4lv/core";
import type { RgbImage } from "@lm4lv/core";
import { drawText, GLYPH_HEIGHT, textWidth } from "./font.js";
import type { HistoryEntry } from "./checkpoint.js";

type Rgb = readonly [number, number, number];

export interface PlotSeries {
  name: string;
  /** y values; x defaults to 1..n. */
  y: ArrayLike<number>;
  x?: ArrayLike<number>;
}

export interface PlotOptions {
  width?: number;
  height?: number;
  /** Logarithmic y axis (non-positive values are skipped). */
  logY?: boolean;
  title?: string;
  /** Series colours, cycled; default a ten-colour palette. */
  colors?: Rgb[];
}

export const PALETTE: Rgb[] = [
  [0.12, 0.47, 0.71], [1.0, 0.5, 0.05], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16], [0.58, 0.4, 0.74],
  [0.55, 0.34, 0.29], [0.89, 0.47, 0.76], [0.5, 0.5, 0.5], [0.74, 0.74, 0.13], [0.09, 0.75, 0.81],
];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [0.88, 0.88, 0.88];
const TEXT_SCALE = 2;

/** Series for plotLossCurves from a training history: total loss and each named part, by step. */
export function lossSeries(history: HistoryEntry[]): PlotSeries[] {
  const x = history.map((h) => h.step);
  const out: PlotSeries[] = [{ name: "loss", x, y: history.map((h) => h.loss) }];
  const parts = new Set(history.flatMap((h) => Object.keys(h.parts)));
  for (const p of parts) out.push({ name: p, x, y: history.map((h) => h.parts[p] ?? NaN) });
  return out;
}

/** About `count` round tick positions (1, 2, 5 × 10^k steps) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  // Pick 1, 2, 5 or 10 × mag, whichever is nearest to the raw step on a log scale (cut points √2, √10, √50).
  const r = raw / mag;
  const step = mag * (r >= Math.sqrt(50) ? 10 : r >= Math.sqrt(10) ? 5 : r >= Math.SQRT2 ? 2 : 1);
  const ticks: number[] = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

function tickLabel(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(4)));
  return v.toExponential(0).replace("e+", "e");
}

class Canvas {
  readonly data: Float32Array;
  constructor(readonly width: number, readonly height: number) {
    this.data = new Float32Array(width * height * 3).fill(1);
  }
  set(x: number, y: number, c: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 3;
    this.data[o] = c[0];
    this.data[o + 1] = c[1];
    this.data[o + 2] = c[2];
  }
  /** Straight line, one pixel wide, by stepping along the longer axis. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
    const n = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let i = 0; i <= n; i++) this.set(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, c);
  }
  text(s: string, x: number, y: number, c: Rgb): void {
    drawText(this.data, this.width, this.height, s, Math.round(x), Math.round(y), c, TEXT_SCALE);
  }
  image(): RgbImage {
    return { width: this.width, height: this.height, data: this.data };
  }
}

/** Draws one or more named curves on shared axes. */
export function plotLossCurves(series: PlotSeries[], opts: PlotOptions = {}): RgbImage {
  const width = opts.width ?? 640;
  const height = opts.height ?? 400;
  if (width < 120 || height < 80) throw new RangeError(`plotLossCurves: image ${width}×${height} is too small (min 120×80)`);
  const colors = opts.colors ?? PALETTE;
  const logY = opts.logY ?? false;
  const ty = (v: number) => (logY ? Math.log10(v) : v);
  const usable = (v: number) => Number.isFinite(v) && (!logY || v > 0);

  // Data ranges over finite (and, for log, positive) points.
  let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.y.length; i++) {
      const x = s.x ? s.x[i] : i + 1;
      if (!usable(s.y[i]) || !Number.isFinite(x)) continue;
      xMin = Math.min(xMin, x); xMax = Math.max(xMax, x);
      yMin = Math.min(yMin, ty(s.y[i])); yMax = Math.max(yMax, ty(s.y[i]));
    }
  }
  if (xMin === Infinity) { xMin = 0; xMax = 1; yMin = 0; yMax = 1; }
  if (xMax === xMin) { xMin -= 1; xMax += 1; }
  if (yMax === yMin) { yMin -= 0.5; yMax += 0.5; }
  const pad = 0.05 * (yMax - yMin);
  yMin -= pad; yMax += pad;

  // Layout: plot area inside margins.
  const charH = GLYPH_HEIGHT * TEXT_SCALE;
  const yTicks = logY && Math.floor(yMax) - Math.ceil(yMin) >= 1
    ? Array.from({ length: Math.floor(yMax) - Math.ceil(yMin) + 1 }, (_, i) => Math.ceil(yMin) + i)
    : niceTicks(yMin, yMax, 5);
  const yLabels = yTicks.map((t) => tickLabel(logY ? 10 ** t : t));
  const left = 12 + Math.max(...yLabels.map((l) => textWidth(l, TEXT_SCALE)));
  const top = opts.title ? 2 * charH + 6 : charH;
  const bottom = height - (charH + 16);
  const right = width - 16;
  const px = (x: number) => left + ((x - xMin) / (xMax - xMin)) * (right - left);
  const py = (y: number) => bottom - ((y - yMin) / (yMax - yMin)) * (bottom - top);

  const cv = new Canvas(width, height);
  // Grid lines and tick labels.
  yTicks.forEach((t, i) => {
    const y = Math.round(py(t));
    cv.line(left, y, right, y, GRID);
    cv.line(left - 4, y, left, y, BLACK);
    cv.text(yLabels[i], left - 6 - textWidth(yLabels[i], TEXT_SCALE), y - charH / 2, BLACK);
  });
  const xTicks = niceTicks(xMin, xMax, Math.max(2, Math.floor((right - left) / 80)));
  for (const t of xTicks) {
    const x = Math.round(px(t));
    cv.line(x, top, x, bottom, GRID);
    cv.line(x, bottom, x, bottom + 4, BLACK);
    const l = tickLabel(t);
    cv.text(l, x - textWidth(l, TEXT_SCALE) / 2, bottom + 7, BLACK);
  }
  // Axes.
  cv.line(left, top, left, bottom, BLACK);
  cv.line(left, bottom, right, bottom, BLACK);
  if (opts.title) cv.text(opts.title, (width - textWidth(opts.title, TEXT_SCALE)) / 2, 4, BLACK);

  // Curves: a polyline per series, broken at unusable points; drawn two pixels thick.
  series.forEach((s, si) => {
    const c = colors[si % colors.length];
    let prev: [number, number] | null = null;
    for (let i = 0; i < s.y.length; i++) {
      const x = s.x ? s.x[i] : i + 1;
      if (!usable(s.y[i]) || !Number.isFinite(x)) { prev = null; continue; }
      const p: [number, number] = [Math.round(px(x)), Math.round(py(ty(s.y[i])))];
      if (prev) { cv.line(prev[0], prev[1], p[0], p[1], c); cv.line(prev[0], prev[1] + 1, p[0], p[1] + 1, c); }
      else cv.set(p[0], p[1], c);
      prev = p;
    }
  });

  // Legend (top right): a colour swatch and the name per series.
  series.forEach((s, si) => {
    const c = colors[si % colors.length];
    const y = top + 6 + si * (charH + 6);
    const tw = textWidth(s.name, TEXT_SCALE);
    const x = right - 8 - tw - 22;
    for (let dy = 0; dy < 3; dy++) cv.line(x, y + charH / 2 - 1 + dy, x + 16, y + charH / 2 - 1 + dy, c);
    cv.text(s.name, x + 22, y, BLACK);
  });
  return cv.image();
}

/** Draws the curves and writes them as PNG. */
export async function writeLossPlot(path: string, series: PlotSeries[], opts: PlotOptions = {}): Promise<void> {
  await writeImage(path, plotLossCurves(series, opts));
}

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
