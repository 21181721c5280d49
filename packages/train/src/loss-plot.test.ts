import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HistoryEntry, ValidationEntry } from "./checkpoint.js";
import { lossChartSvg, lossPlotPaths, lossSeries, logTicks, niceTicks, writeLossPlot } from "./loss-plot.js";
import { parseLossCsv } from "./loss-csv.js";

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function unescape(s: string, where: string): string {
  return s.replace(/&([^;]*);?/g, (m, name: string) => {
    if (!m.endsWith(";") || !(name in ENTITIES)) throw new Error(`${where}: bad entity ${JSON.stringify(m)}`);
    return ENTITIES[name];
  });
}

/**
 * A small well-formedness check for the XML subset an SVG file uses: an optional declaration,
 * comments, one root element, properly nested elements with quoted attributes, escaped text.
 * Throws on anything else; returns the root element.
 */
function parseXml(src: string): XmlElement {
  let i = 0;
  const fail = (msg: string): never => { throw new Error(`XML at ${i}: ${msg}`); };
  const skipSpace = () => { while (i < src.length && /\s/.test(src[i])) i++; };
  const name = (): string => {
    const m = /^[A-Za-z_:][\w.:-]*/.exec(src.slice(i, i + 200));
    if (!m) fail("expected a name");
    i += m![0].length;
    return m![0];
  };
  if (src.startsWith("<?xml")) {
    const end = src.indexOf("?>");
    if (end < 0) fail("unclosed declaration");
    i = end + 2;
  }
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  while (i < src.length) {
    if (src.startsWith("<!--", i)) {
      const end = src.indexOf("-->", i);
      if (end < 0) fail("unclosed comment");
      i = end + 3;
    } else if (src.startsWith("</", i)) {
      i += 2;
      const n = name();
      skipSpace();
      if (src[i] !== ">") fail(`expected > after </${n}`);
      i++;
      const open = stack.pop();
      if (!open || open.name !== n) fail(`</${n}> closes <${open?.name ?? "nothing"}>`);
    } else if (src[i] === "<") {
      i++;
      if (root && stack.length === 0) fail("a second root element");
      const el: XmlElement = { name: name(), attrs: {}, children: [], text: "" };
      for (;;) {
        const before = i;
        skipSpace();
        if (src[i] === ">" || src.startsWith("/>", i)) break;
        if (i === before) fail(`expected whitespace before an attribute of <${el.name}>`);
        const a = name();
        if (a in el.attrs) fail(`attribute ${a} twice on <${el.name}>`);
        if (src[i] !== "=" || (src[i + 1] !== '"' && src[i + 1] !== "'")) fail(`attribute ${a} of <${el.name}> is not quoted`);
        const q = src[i + 1];
        const end = src.indexOf(q, i + 2);
        if (end < 0) fail("unclosed attribute value");
        const raw = src.slice(i + 2, end);
        if (raw.includes("<")) fail(`"<" in attribute ${a}`);
        el.attrs[a] = unescape(raw, `attribute ${a}`);
        i = end + 1;
      }
      if (stack.length) stack[stack.length - 1].children.push(el);
      else root = el;
      if (src.startsWith("/>", i)) i += 2;
      else { i++; stack.push(el); }
    } else {
      const end = src.indexOf("<", i);
      const raw = src.slice(i, end < 0 ? src.length : end);
      if (stack.length === 0 && raw.trim()) fail("text outside the root element");
      if (stack.length) stack[stack.length - 1].text += unescape(raw, "text");
      i = end < 0 ? src.length : end;
    }
  }
  if (stack.length) fail(`<${stack[stack.length - 1].name}> is not closed`);
  if (!root) fail("no root element");
  return root!;
}

function all(el: XmlElement, pred: (e: XmlElement) => boolean): XmlElement[] {
  return [...(pred(el) ? [el] : []), ...el.children.flatMap((c) => all(c, pred))];
}

/** Vertices of an SVG path made of M and L commands. */
function vertices(d: string): number {
  return (d.match(/[ML]/g) ?? []).length;
}

function history(n: number, loss: (i: number) => number): HistoryEntry[] {
  return Array.from({ length: n }, (_, i) => ({ step: i + 1, loss: loss(i), parts: { l1: loss(i) / 2 }, lr: 1e-3 * (1 - i / n), gradNorm: 1 + i / 7 }));
}

describe("loss charts", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "lm4lv-loss-plot-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("round tick positions on linear and log axes", () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0.13, 0.92, 4)).toEqual([0.2, 0.4, 0.6, 0.8]);
    expect(niceTicks(1, 1000, 4)).toEqual([200, 400, 600, 800, 1000]);
    expect(niceTicks(-0.3, 0.3, 3)).toEqual([-0.2, 0, 0.2]);
    expect(logTicks(0.008, 12)).toEqual([0.01, 0.1, 1, 10]);
    expect(logTicks(0.15, 6)).toEqual([0.2, 0.5, 1, 2, 5]);
    expect(logTicks(0.31, 0.9)).toEqual([0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
    expect(logTicks(0.52, 0.58)).toEqual([0.52, 0.54, 0.56, 0.58]);
    expect(logTicks(1e-6, 1e6)).toHaveLength(7);
  });

  it("is well-formed SVG with one vertex per step, one circle per validation, and text tick labels", () => {
    const h = history(100, (i) => 10 * 0.001 ** (i / 99)); // 10 → 0.01 over 100 steps
    const val: ValidationEntry[] = [25, 50, 75, 100].map((step, k) => ({ step, metric: -(20 + k), values: { metric: -(20 + k), psnr: 20 + k } }));
    const svg = parseXml(lossChartSvg(lossSeries(h, val), { title: "denoise <tiny> & co" }));
    expect(svg.name).toBe("svg");
    expect(svg.attrs.xmlns).toBe("http://www.w3.org/2000/svg");
    expect([svg.attrs.width, svg.attrs.height]).toEqual(["640", "400"]);

    const paths = all(svg, (e) => e.name === "path" && e.attrs.class === "series");
    expect(paths.map((p) => p.attrs["data-name"])).toEqual(["loss", "l1"]);
    expect(paths.map((p) => vertices(p.attrs.d))).toEqual([100, 100]);
    const points = all(svg, (e) => e.name === "g" && e.attrs.class === "points");
    expect(points.map((p) => [p.attrs["data-name"], p.children.filter((c) => c.name === "circle").length])).toEqual([["validation psnr", 4]]);

    const ticks = (cls: string) => all(svg, (e) => e.name === "text" && e.attrs.class === `tick ${cls}`).map((e) => e.text);
    expect(ticks("y")).toEqual(["0.01", "0.1", "1", "10"]); // l1 reaches 0.005, just under the padded range's 0.01 tick
    expect(ticks("x")).toEqual(["20", "40", "60", "80", "100"]);
    expect(ticks("y2")).toEqual(["20", "20.5", "21", "21.5", "22", "22.5", "23"]);
    const texts = all(svg, (e) => e.name === "text").map((e) => e.text);
    expect(texts).toContain("denoise <tiny> & co");
    expect(texts).toContain("loss (log scale)");
    expect(texts).toContain("step");
    expect(texts).toEqual(expect.arrayContaining(["loss", "l1", "validation psnr"]));
  });

  it("breaks lines at values a log axis cannot show and skips validation values that are not finite", () => {
    const series = [
      { name: "a", x: [1, 2, 3, 4, 5, 6, 7], y: [1, NaN, 0.5, 0.4, 0, -1, 0.25] },
      { name: "v", x: [3, 6], y: [NaN, 2], axis: "right" as const, points: true },
    ];
    const svg = parseXml(lossChartSvg(series, { width: 200, height: 120 }));
    const d = all(svg, (e) => e.attrs.class === "series")[0].attrs.d;
    expect((d.match(/M/g) ?? []).length).toBe(3);
    expect(vertices(d)).toBe(4);
    expect(all(svg, (e) => e.name === "circle" && !!e.attrs.cx && e.attrs.r === "3.5").length).toBe(1 + 1); // one point + its legend marker
    expect(() => lossChartSvg([], { width: 100, height: 50 })).toThrow(/too small/);
    expect(() => parseXml(lossChartSvg([]))).not.toThrow();
  });

  it("keeps the envelope of a long history within twice the plot width", () => {
    const h = history(20_000, (i) => (1 + 0.5 * Math.sin(i)) / (1 + i / 100));
    const svg = parseXml(lossChartSvg(lossSeries(h)));
    for (const p of all(svg, (e) => e.attrs.class === "series")) {
      const n = vertices(p.attrs.d);
      expect(n).toBeGreaterThan(400);
      expect(n).toBeLessThanOrEqual(2 * 640);
    }
  });

  it("writes <base>.svg and <base>.csv atomically for a .png, .svg or extension-less path", () => {
    expect(lossPlotPaths("run/loss.png")).toEqual({ svg: "run/loss.svg", csv: "run/loss.csv" });
    expect(lossPlotPaths("run/loss.svg")).toEqual({ svg: "run/loss.svg", csv: "run/loss.csv" });
    expect(lossPlotPaths("run/loss")).toEqual({ svg: "run/loss.svg", csv: "run/loss.csv" });
    const h = history(30, (i) => 2 / (i + 1));
    const val: ValidationEntry[] = [{ step: 30, metric: 0.5, values: { metric: 0.5 } }];
    const out = writeLossPlot(join(dir, "sub", "loss.png"), h, val);
    expect(out).toEqual({ svg: join(dir, "sub", "loss.svg"), csv: join(dir, "sub", "loss.csv") });
    expect(readdirSync(join(dir, "sub")).sort()).toEqual(["loss.csv", "loss.svg"]);
    expect(existsSync(join(dir, "sub", "loss.png"))).toBe(false);
    const svg = parseXml(readFileSync(out.svg, "utf8"));
    expect(all(svg, (e) => e.name === "title")[0].text).toBe("training loss");
    expect(all(svg, (e) => e.attrs.class === "points")[0].attrs["data-name"]).toBe("validation metric");
    expect(parseLossCsv(readFileSync(out.csv, "utf8"))).toEqual({ history: h, validation: val });
  });

  it("the XML check rejects what is not well-formed", () => {
    for (const bad of ["<a><b></a></b>", "<a x=1/>", "<a>&nbsp;</a>", "<a/><b/>", "<a>", "<a x='1' x='2'/>", "text<a/>"]) {
      expect(() => parseXml(bad), bad).toThrow();
    }
    expect(parseXml('<a x="&lt;1&gt;"><!-- c --><b/>t &amp; u</a>')).toEqual({
      name: "a", attrs: { x: "<1>" }, text: "t & u", children: [{ name: "b", attrs: {}, children: [], text: "" }],
    });
  });
});
