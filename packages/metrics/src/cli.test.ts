/** Runs the built CLI (dist/cli.js): build the package first (turbo's test task does). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const PKG = join(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(PKG, "dist", "cli.js");
const FIXTURES = join(PKG, "fixtures");
const expected = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")) as {
  cases: { gt: string; pred: string; cropBorder: number; yChannel: boolean; psnr: number; ssim: number }[];
};
const want = (pred: string, cropBorder: number, yChannel: boolean) =>
  expected.cases.find((c) => c.gt === "gt.png" && c.pred === pred && c.cropBorder === cropBorder && c.yChannel === yChannel)!;

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let root: string;
beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "pnpm --filter @lm4lv/metrics build" first`);
  root = mkdtempSync(join(tmpdir(), "lm4lv-metrics-cli-"));
  mkdirSync(join(root, "gt"));
  mkdirSync(join(root, "pred"));
  for (const [name, pred] of [["n.png", "noisy.png"], ["b.png", "blurred.png"]]) {
    copyFileSync(join(FIXTURES, "gt.png"), join(root, "gt", name));
    copyFileSync(join(FIXTURES, pred), join(root, "pred", name));
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("metrics CLI", () => {
  it("--json on two folders prints exactly images + mean", () => {
    const r = run(join(root, "gt"), join(root, "pred"), "--json");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(["images", "mean"]);
    expect(out.images.map((i: object) => Object.keys(i))).toEqual([["name", "psnr", "ssim"], ["name", "psnr", "ssim"]]);
    expect(Object.keys(out.mean)).toEqual(["psnr", "ssim"]);
    const [b, n] = [want("blurred.png", 4, false), want("noisy.png", 4, false)];
    expect(out.images[0].name).toBe("b.png");
    expect(Math.abs(out.images[0].psnr - b.psnr)).toBeLessThan(1e-12);
    expect(Math.abs(out.images[1].ssim - n.ssim)).toBeLessThan(1e-12);
    expect(Math.abs(out.mean.psnr - (b.psnr + n.psnr) / 2)).toBeLessThan(1e-12);
    expect(Math.abs(out.mean.ssim - (b.ssim + n.ssim) / 2)).toBeLessThan(1e-12);
  });

  it("two files with --crop-border and --y-channel", () => {
    const r = run(join(FIXTURES, "gt.png"), join(FIXTURES, "darker.png"), "--crop-border", "0", "--y-channel", "--json");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const c = want("darker.png", 0, true);
    expect(out.images[0].name).toBe("gt.png");
    expect(Math.abs(out.mean.psnr - c.psnr)).toBeLessThan(1e-12);
    expect(Math.abs(out.mean.ssim - c.ssim)).toBeLessThan(1e-12);
  });

  it("prints a table by default", () => {
    const r = run(join(root, "gt"), join(root, "pred"));
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe("RGB, crop border 4, 2 image(s)");
    expect(lines.at(-1)).toMatch(/^mean\s+\d+\.\d{4}\s+0\.\d{6}$/);
    expect(r.stdout).toContain(want("noisy.png", 4, false).psnr.toFixed(4));
  });

  it("exits 1 with a message on bad input", () => {
    const cases: [string[], string][] = [
      [[join(FIXTURES, "gt.png")], "expected <gt> <pred>, got 1 argument(s)"],
      [[join(FIXTURES, "gt.png"), join(root, "pred")], "is a file but"],
      [[join(FIXTURES, "gt.png"), join(FIXTURES, "nothing.png")], "nothing.png: no such file or folder"],
      [[join(FIXTURES, "gt.png"), join(FIXTURES, "odd_gt.png")], "size mismatch"],
      [[join(FIXTURES, "gt.png"), join(FIXTURES, "gt.png"), "--crop-border", "x"], "--crop-border: expected an integer >= 0, got \"x\""],
      [[join(FIXTURES, "gt.png"), join(FIXTURES, "gt.png"), "--bogus"], "Unknown option '--bogus'"],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(message);
    }
  });
});
