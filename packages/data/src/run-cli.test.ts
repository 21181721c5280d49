import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImage, writeImage } from "@lm4lv/core";
import { parseDataArgs, runCli } from "./run-cli.js";
import { JsonDataset } from "./dataset.js";
import { randomImage } from "./testing.js";

let root: string;
let clean: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "lm4lv-data-cli-"));
  clean = join(root, "clean");
  mkdirSync(clean);
  await writeImage(join(clean, "one.png"), randomImage(20, 20, 1));
  await writeImage(join(clean, "two.png"), randomImage(20, 20, 2));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function run(args: string[]) {
  const out: string[] = [];
  let err = "";
  const code = await runCli(args, { out: (l) => out.push(l), err: (t) => (err += t), tty: false });
  return { code, out: out.join("\n"), err };
}

describe("lm4lv-data CLI", () => {
  it("degrade writes the dataset and reports progress", async () => {
    const outDir = join(root, "out");
    const r = await run(["degrade", clean, outDir, "--task", "hflip", "--size", "8", "--seed", "3"]);
    expect(r.err).toBe("[1/2] one.png\n[2/2] two.png\n");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/wrote 2 pairs \(hflip, seed 3, 8×8\)/);
    const ds = JsonDataset.open(join(outDir, "data.json"));
    const s = await ds.get(0);
    expect(s.lq).toEqual(await readImage(join(clean, "one.png"), { size: 8 }));
    expect(s.hq.width).toBe(8);
  });

  it("--param overrides a default", async () => {
    const outDir = join(root, "out-sp");
    const r = await run(["degrade", clean, outDir, "--task", "saltpepper", "--size", "8", "--param", "ratio=0"]);
    expect(r.code).toBe(0);
    const s = await JsonDataset.open(outDir).get(1);
    expect(s.lq).toEqual(s.hq);
  });

  it("tasks lists every task", async () => {
    const r = await run(["tasks"]);
    expect(r.code).toBe(0);
    expect(r.out.split("\n")).toHaveLength(14);
    expect(r.out).toMatch(/^deblur\s+restoration/m);
  });

  it.each([
    [["degrade", "a", "b"], /--task: expected one of denoise, .*, got nothing/],
    [["degrade", "a", "b", "--task", "sharpen"], /--task: expected one of denoise, .*, got "sharpen"/],
    [["degrade", "a", "b", "--task", "denoise", "--size", "abc"], /--size: expected a positive integer, got "abc"/],
    [["degrade", "a", "b", "--task", "denoise", "--seed", "1.5"], /--seed: expected an integer >= 0, got 1.5/],
    [["degrade", "a", "b", "--task", "denoise", "--param", "sigma=x"], /--param: sigma: expected a number, got "x"/],
    [["degrade", "a", "b", "--task", "denoise", "--param", "radius=3"], /--param: radius: task "denoise" has no such parameter/],
    [["degrade", "a", "--task", "denoise"], /expected <clean-dir> <out-dir>, got 1 argument/],
    [["degrade", "a", "b", "--task", "denoise", "--bogus"], /Unknown option '--bogus'/],
    [["frobnicate"], /unknown command "frobnicate"/],
  ])("exit 1 with a clear message: %j", async (args, msg) => {
    const r = await run(args as string[]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(msg);
  });

  it("names a missing clean folder and writes nothing", async () => {
    const outDir = join(root, "never");
    const r = await run(["degrade", join(root, "nope"), outDir, "--task", "denoise"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/nope: not a folder/);
    expect(existsSync(outDir)).toBe(false);
  });
});

describe("parseDataArgs", () => {
  it("gives typed options with the defaults", () => {
    expect(parseDataArgs(["degrade", "in", "out", "--task", "denoise"])).toEqual({
      command: "degrade",
      cleanDir: "in",
      outDir: "out",
      options: { task: "denoise", seed: 0, params: {} },
    });
    const c = parseDataArgs(["degrade", "in", "out", "--task=mask", "--size", "64", "--seed", "7", "--param", "patch=4", "--param", "ratio=0.5"]);
    expect(c).toMatchObject({ options: { task: "mask", size: 64, seed: 7, params: { patch: 4, ratio: 0.5 } } });
  });

  it("help, tasks and a missing command", () => {
    expect(parseDataArgs(["--help"])).toEqual({ command: "help", exitCode: 0 });
    expect(parseDataArgs(["degrade", "--size", "x", "-h"])).toEqual({ command: "help", exitCode: 0 });
    expect(parseDataArgs([])).toEqual({ command: "help", exitCode: 1 });
    expect(parseDataArgs(["tasks"])).toEqual({ command: "tasks" });
  });

  it.each([
    [["degrade", "a", "b", "--task", "denoise", "--frob", "1"], /Unknown option '--frob'/],
    [["degrade", "a", "b", "--task"], /--task <value>' argument missing/],
    [["degrade", "a", "b", "--task", "denoise", "--size", "0"], /--size: expected a positive integer, got 0/],
    [["degrade", "a", "b", "--task", "denoise", "--seed=-1"], /--seed: expected an integer >= 0, got -1/],
    [["degrade", "a", "b", "--task", "denoise", "--seed", ""], /--seed: expected an integer >= 0, got ""/],
    [["degrade", "a", "b", "--task", "denoise", "--param", "sigma"], /--param: expected key=value, got "sigma"/],
    [["degrade", "a", "--task", "denoise"], /expected <clean-dir> <out-dir>, got 1 argument/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseDataArgs(argv as string[])).toThrow(message);
  });
});
