import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readImage, writeImage } from "@lm4lv/core";
import { repoRoot } from "./common.js";
import { makeTiles, parseTilesOptions } from "./tiles.js";

describe("tiles", () => {
  it("options: defaults, flags and bad values", () => {
    expect(parseTilesOptions([])).toEqual({ cache: join(repoRoot(), ".cache/data"), from: "crops", grid: 2 });
    expect(parseTilesOptions(["--", "--grid", "4", "--from", "crops-128"])).toMatchObject({ grid: 4, from: "crops-128" });
    expect(() => parseTilesOptions(["--grid", "0"])).toThrow(/--grid: expected a positive integer, got 0/);
    expect(parseTilesOptions(["--help"])).toBeUndefined();
  });

  it("cuts every crop of both splits into grid² tiles, row by row, keeping the split", async () => {
    const cache = mkdtempSync(join(tmpdir(), "lm4lv-tiles-"));
    // 8×8 crops whose pixel (x, y) is (x/8, y/8, k/4): each tile's place is readable from its pixels
    const crop = (k: number) => ({ width: 8, height: 8, data: Float32Array.from({ length: 192 }, (_, i) => { const p = Math.floor(i / 3), c = i % 3; return c === 0 ? (p % 8) / 8 : c === 1 ? Math.floor(p / 8) / 8 : k / 4; }) });
    for (const [split, ks] of [["train", [0, 1]], ["val", [2]]] as const) {
      mkdirSync(join(cache, "crops", split), { recursive: true });
      for (const k of ks) await writeImage(join(cache, "crops", split, `c${k}.png`), crop(k));
    }
    const r = await makeTiles({ cache, from: "crops", grid: 2 });
    expect([r.dir, r.train, r.val]).toEqual([join(cache, "crops-tiles2"), 8, 4]);
    expect(readdirSync(join(r.dir, "val")).sort()).toEqual(["c2--t0.png", "c2--t1.png", "c2--t2.png", "c2--t3.png"]);
    const t3 = await readImage(join(r.dir, "train", "c1--t3.png")); // bottom right of crop 1
    expect([t3.width, t3.height]).toEqual([4, 4]);
    const px = (x: number, y: number) => Array.from(t3.data.subarray((y * 4 + x) * 3, (y * 4 + x) * 3 + 3)).map((v) => Math.round(v * 255));
    expect(px(0, 0)).toEqual([Math.round((4 / 8) * 255), Math.round((4 / 8) * 255), Math.round(0.25 * 255)]);
    expect(px(3, 1)).toEqual([Math.round((7 / 8) * 255), Math.round((5 / 8) * 255), Math.round(0.25 * 255)]);
    expect(JSON.parse(readFileSync(join(r.dir, "manifest.json"), "utf8"))).toEqual({ from: "crops", grid: 2, train: 8, val: 4 });
    expect(existsSync(`${r.dir}.tmp`)).toBe(false); // built aside, renamed into place
    // a second run replaces the folder: nothing of the first one survives
    writeFileSync(join(r.dir, "train", "stale.png"), "not a tile");
    const again = await makeTiles({ cache, from: "crops", grid: 2 });
    expect(readdirSync(join(again.dir, "train")).sort()).toEqual(readdirSync(join(r.dir, "train")).filter((f) => f !== "stale.png").sort());
    expect(existsSync(join(again.dir, "train", "stale.png"))).toBe(false);
  });
});
