/**
 * Loss charts as SVG: axes with round tick labels (real SVG text), grid lines,
 * the training loss and its parts as lines on a log (or linear) axis, the
 * validation values as points on a second, linear axis at the right, a title
 * and a legend. writeLossPlot writes the chart and the history as CSV, each
 * atomically (temporary file + rename).
 */
import { mkdirSync } from "node:fs";
import { dirname, extname } from "node:path";
import { writeFileAtomic } from "@lm4lv/core";
import type { HistoryEntry, ValidationEntry } from "./checkpoint.js";
import { lossCsv } from "./loss-csv.js";

export interface ChartSeries {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  /** "left" (default): the loss axis; "right": a linear axis of its own (validation values). */
  axis?: "left" | "right";
  /** Draw separate markers instead of a line (default false). */
  points?: boolean;
}

export interface LossChartOptions {
  width?: number;
  height?: number;
  title?: string;
  /** Logarithmic left axis (non-positive values are left out). Default true. */
  logY?: boolean;
  xLabel?: string;
  yLabel?: string;
}

/** Series colours, cycled. */
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const FONT_SIZE = 12;

/**
 * The chart's series from a training history: the loss and each named part as lines by step, and,
 * when there are validation entries, one of their values as points on the right axis: `validationKey`,
 * by default "psnr" when every entry has it, else the trainer's `metric`.
 */
export function lossSeries(history: HistoryEntry[], validation: ValidationEntry[] = [], validationKey?: string): ChartSeries[] {
  const x = history.map((h) => h.step);
  const out: ChartSeries[] = [{ name: "loss", x, y: history.map((h) => h.loss) }];
  const parts = new Set(history.flatMap((h) => Object.keys(h.parts)));
  for (const p of parts) out.push({ name: p, x, y: history.map((h) => h.parts[p] ?? NaN) });
  if (validation.length > 0) {
    const key = validationKey ?? (validation.every((v) => "psnr" in v.values) ? "psnr" : "metric");
    const y = validation.map((v) => (key === "metric" ? v.metric : v.values[key] ?? NaN));
    out.push({ name: `validation ${key}`, x: validation.map((v) => v.step), y, axis: "right", points: true });
  }
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

/**
 * Tick values for a log axis covering [lo, hi] (both > 0): powers of ten when at least three fall inside,
 * else 1-2-5 or 1…9 times powers of ten, else round linear ticks. At most about ten.
 */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0) || !(hi > lo)) return lo > 0 ? [lo] : [];
  const e0 = Math.floor(Math.log10(lo));
  const e1 = Math.ceil(Math.log10(hi));
  for (const mults of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const ticks: number[] = [];
    for (let e = e0; e <= e1; e++) {
      for (const m of mults) {
        const v = Number((m * 10 ** e).toPrecision(12));
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push(v);
      }
    }
    if (ticks.length >= 3) {
      const every = Math.ceil(ticks.length / 10);
      return ticks.filter((_, i) => i % every === 0);
    }
  }
  return niceTicks(lo, hi, 4).filter((v) => v > 0);
}

/** Short label for a tick value: plain up to four significant digits, exponent form outside [1e-3, 1e5). */
export function tickLabel(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(4)));
  return v.toExponential(0).replace("e+", "e");
}

/** Escapes text for SVG content and attribute values. */
function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** A coordinate with at most two decimals. */
function c(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** Rough width of a label in pixels (sans-serif digits are about 0.6 em). */
function textWidth(s: string): number {
  return s.length * FONT_SIZE * 0.6;
}

interface Range { lo: number; hi: number }

/** Smallest and largest value (a loop: histories can be longer than the spread-argument limit). */
function extent(values: number[]): Range {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return { lo, hi };
}

/** Range of the values, widened when flat and padded by 5 % (0..1 when there are none). */
function range(values: number[]): Range {
  let { lo, hi } = extent(values);
  if (!Number.isFinite(lo)) return { lo: 0, hi: 1 };
  if (hi === lo) { lo -= 0.5; hi += 0.5; }
  const pad = 0.05 * (hi - lo);
  return { lo: lo - pad, hi: hi + pad };
}

/**
 * The points of a line series in pixels, split into runs at unusable values. A series with more points
 * than twice the plot's pixel width keeps, per pixel column, the lowest and the highest point (in step
 * order), which draws the same envelope with a bounded file size.
 */
function polylines(xs: number[], ys: number[], plotWidth: number): [number, number][][] {
  const runs: [number, number][][] = [];
  let run: [number, number][] = [];
  const thin = xs.length > 2 * plotWidth;
  let column = NaN;
  let lo: [number, number] | null = null;
  let hi: [number, number] | null = null;
  let loAt = 0, hiAt = 0;
  const flush = () => {
    if (!lo || !hi) return;
    if (lo === hi) run.push(lo);
    else if (loAt < hiAt) run.push(lo, hi);
    else run.push(hi, lo);
    lo = hi = null;
  };
  for (let i = 0; i < xs.length; i++) {
    const p: [number, number] = [xs[i], ys[i]];
    if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
      flush();
      if (run.length) runs.push(run);
      run = [];
      column = NaN;
      continue;
    }
    if (!thin) { run.push(p); continue; }
    const col = Math.floor(p[0]);
    if (col !== column) { flush(); column = col; }
    // SVG y grows downwards: the lowest value has the largest y.
    if (!lo || p[1] > lo[1]) { lo = p; loAt = i; }
    if (!hi || p[1] < hi[1]) { hi = p; hiAt = i; }
  }
  flush();
  if (run.length) runs.push(run);
  return runs;
}

/** Draws the series as an SVG document (a string). */
export function lossChartSvg(series: ChartSeries[], opts: LossChartOptions = {}): string {
  const width = opts.width ?? 640;
  const height = opts.height ?? 400;
  if (width < 160 || height < 100) throw new RangeError(`lossChartSvg: ${width}×${height} is too small (min 160×100)`);
  const logY = opts.logY ?? true;
  const left = series.filter((s) => (s.axis ?? "left") === "left");
  const right = series.filter((s) => s.axis === "right");
  const okLeft = (v: number) => Number.isFinite(v) && (!logY || v > 0);
  const ty = (v: number) => (logY ? Math.log10(v) : v);

  // Data ranges (the left one in log10 units on a log axis).
  const gather = (ss: ChartSeries[], ok: (v: number) => boolean, f: (v: number) => number) => {
    const xs: number[] = [], ys: number[] = [];
    for (const s of ss) for (let i = 0; i < s.y.length; i++) if (ok(s.y[i]) && Number.isFinite(s.x[i])) { xs.push(s.x[i]); ys.push(f(s.y[i])); }
    return { xs, ys };
  };
  const l = gather(left, okLeft, ty);
  const r = gather(right, Number.isFinite, (v) => v);
  let xr = extent([...l.xs, ...r.xs]);
  if (!Number.isFinite(xr.lo)) xr = { lo: 0, hi: 1 };
  if (xr.hi === xr.lo) xr = { lo: xr.lo - 1, hi: xr.hi + 1 };
  const yl = range(l.ys);
  const yr = range(r.ys);

  // Ticks and their labels.
  const yTicks = logY ? logTicks(10 ** yl.lo, 10 ** yl.hi) : niceTicks(yl.lo, yl.hi, 5);
  const yLabels = yTicks.map(tickLabel);
  const rTicks = right.length ? niceTicks(yr.lo, yr.hi, 5) : [];
  const rLabels = rTicks.map(tickLabel);

  // Layout: the plot area inside margins sized to the labels.
  const line = FONT_SIZE + 4;
  const x0 = 14 + line + Math.max(0, ...yLabels.map(textWidth));
  const x1 = width - (right.length ? 14 + line + Math.max(0, ...rLabels.map(textWidth)) : 16);
  const legendTop = (opts.title ? 2 * line : line) - 4;
  const legend: { x: number; y: number }[] = [];
  let lx = x0, ly = legendTop;
  for (const s of series) {
    const w = 24 + textWidth(s.name) + 18;
    if (lx > x0 && lx + w > x1) { lx = x0; ly += line; }
    legend.push({ x: lx, y: ly + line / 2 });
    lx += w;
  }
  const top = (series.length ? ly + line : legendTop) + 8;
  const y1 = height - 2 * line - 8;
  const plotWidth = x1 - x0;
  const px = (x: number) => x0 + ((x - xr.lo) / (xr.hi - xr.lo)) * plotWidth;
  const py = (y: number, rg: Range) => y1 - ((y - rg.lo) / (rg.hi - rg.lo)) * (y1 - top);
  const xTicks = niceTicks(xr.lo, xr.hi, Math.max(2, Math.floor(plotWidth / 90))).filter((t) => t >= xr.lo && t <= xr.hi);

  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="${FONT_SIZE}">`);
  if (opts.title) out.push(`<title>${esc(opts.title)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);

  // Grid lines, axes, ticks and tick labels.
  out.push('<g class="grid" stroke="#e4e4e4" stroke-width="1">');
  for (const t of yTicks) out.push(`<line x1="${c(x0)}" y1="${c(py(ty(t), yl))}" x2="${c(x1)}" y2="${c(py(ty(t), yl))}"/>`);
  for (const t of xTicks) out.push(`<line x1="${c(px(t))}" y1="${c(top)}" x2="${c(px(t))}" y2="${c(y1)}"/>`);
  out.push("</g>");
  out.push('<g class="axes" stroke="#000000" stroke-width="1" fill="none">');
  out.push(`<path d="M${c(x0)} ${c(top)}V${c(y1)}H${c(x1)}${right.length ? `V${c(top)}` : ""}"/>`);
  for (const t of yTicks) out.push(`<line x1="${c(x0 - 4)}" y1="${c(py(ty(t), yl))}" x2="${c(x0)}" y2="${c(py(ty(t), yl))}"/>`);
  for (const t of rTicks) out.push(`<line x1="${c(x1)}" y1="${c(py(t, yr))}" x2="${c(x1 + 4)}" y2="${c(py(t, yr))}"/>`);
  for (const t of xTicks) out.push(`<line x1="${c(px(t))}" y1="${c(y1)}" x2="${c(px(t))}" y2="${c(y1 + 4)}"/>`);
  out.push("</g>");
  out.push('<g class="tick-labels" fill="#000000">');
  yTicks.forEach((t, i) => out.push(`<text class="tick y" x="${c(x0 - 7)}" y="${c(py(ty(t), yl))}" text-anchor="end" dominant-baseline="middle">${esc(yLabels[i])}</text>`));
  rTicks.forEach((t, i) => out.push(`<text class="tick y2" x="${c(x1 + 7)}" y="${c(py(t, yr))}" text-anchor="start" dominant-baseline="middle">${esc(rLabels[i])}</text>`));
  xTicks.forEach((t) => out.push(`<text class="tick x" x="${c(px(t))}" y="${c(y1 + 8)}" text-anchor="middle" dominant-baseline="hanging">${esc(tickLabel(t))}</text>`));
  out.push("</g>");

  // Title and axis labels.
  if (opts.title) out.push(`<text class="title" x="${c(width / 2)}" y="${c(line)}" text-anchor="middle" font-size="${FONT_SIZE + 2}" font-weight="bold">${esc(opts.title)}</text>`);
  out.push(`<text class="label" x="${c((x0 + x1) / 2)}" y="${c(height - 6)}" text-anchor="middle">${esc(opts.xLabel ?? "step")}</text>`);
  const yLabel = opts.yLabel ?? (logY ? "loss (log scale)" : "loss");
  out.push(`<text class="label" transform="translate(${c(4 + FONT_SIZE)} ${c((top + y1) / 2)}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  if (right.length) {
    const name = right.map((s) => s.name).join(", ");
    out.push(`<text class="label" transform="translate(${c(width - 6)} ${c((top + y1) / 2)}) rotate(-90)" text-anchor="middle">${esc(name)}</text>`);
  }

  // Series: lines as one path each (broken at unusable values), points as circles.
  series.forEach((s, si) => {
    const color = COLORS[si % COLORS.length];
    const onRight = s.axis === "right";
    const xs: number[] = [], ys: number[] = [];
    for (let i = 0; i < s.y.length; i++) {
      const ok = onRight ? Number.isFinite(s.y[i]) : okLeft(s.y[i]);
      xs.push(ok ? px(s.x[i]) : NaN);
      ys.push(ok ? (onRight ? py(s.y[i], yr) : py(ty(s.y[i]), yl)) : NaN);
    }
    if (s.points) {
      out.push(`<g class="points" data-name="${esc(s.name)}" fill="${color}" stroke="#ffffff" stroke-width="0.75">`);
      for (let i = 0; i < xs.length; i++) if (Number.isFinite(xs[i]) && Number.isFinite(ys[i])) out.push(`<circle cx="${c(xs[i])}" cy="${c(ys[i])}" r="3.5"/>`);
      out.push("</g>");
    } else {
      const d = polylines(xs, ys, plotWidth).map((run) => run.map((p, j) => `${j === 0 ? "M" : "L"}${c(p[0])} ${c(p[1])}`).join("")).join("");
      out.push(`<path class="series" data-name="${esc(s.name)}" d="${d}" fill="none" stroke="${color}" stroke-width="1.5" stroke-linejoin="round"/>`);
    }
  });

  // Legend: one row of entries (wrapped when needed) between the title and the plot.
  out.push('<g class="legend">');
  legend.forEach(({ x, y }, si) => {
    const s = series[si];
    const color = COLORS[si % COLORS.length];
    if (s.points) out.push(`<circle cx="${c(x + 9)}" cy="${c(y)}" r="3.5" fill="${color}"/>`);
    else out.push(`<line x1="${c(x)}" y1="${c(y)}" x2="${c(x + 18)}" y2="${c(y)}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${c(x + 24)}" y="${c(y)}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  out.push("</g>");
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/**
 * The two files of a loss plot: `<base>.svg` and `<base>.csv`, where base is `path` without an
 * `.svg`, `.csv` or image extension (so "run/loss.png", "run/loss.svg" and "run/loss" all give
 * run/loss.svg and run/loss.csv).
 */
export function lossPlotPaths(path: string): { svg: string; csv: string } {
  const ext = extname(path).toLowerCase();
  const base = [".svg", ".csv", ".png", ".jpg", ".jpeg", ".webp"].includes(ext) ? path.slice(0, -ext.length) : path;
  return { svg: `${base}.svg`, csv: `${base}.csv` };
}

/** Writes the loss chart (SVG) and the history (CSV) for `path` (see lossPlotPaths); returns both paths. */
export function writeLossPlot(path: string, history: HistoryEntry[], validation: ValidationEntry[] = [], opts: LossChartOptions & { validationKey?: string } = {}): { svg: string; csv: string } {
  const paths = lossPlotPaths(path);
  mkdirSync(dirname(paths.svg), { recursive: true });
  writeFileAtomic(paths.csv, lossCsv(history, validation));
  writeFileAtomic(paths.svg, lossChartSvg(lossSeries(history, validation, opts.validationKey), { title: "training loss", ...opts }));
  return paths;
}
