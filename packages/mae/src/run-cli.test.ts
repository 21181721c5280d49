import { afterAll, describe, expect, it } from "vitest";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readImage, writeImage } from "@lm4lv/core";
import { main, parseMaeArgs } from "./run-cli.js";
import { VIT_MAE_TINY_DIR as FIXTURE_DIR } from "./testing.js";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

async function writeTestImage(path: string, w: number, h: number): Promise<void> {
  const data = new Float32Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 37) % 101) / 100;
  await writeImage(path, { width: w, height: h, data });
}

describe("mae CLI", () => {
  const tmp = mkdtempSync(join(tmpdir(), "mae-cli-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("reconstructs one file to a file, at image_size", async () => {
    const src = join(tmp, "a.png");
    await writeTestImage(src, 50, 40);
    const dst = join(tmp, "a-recon.png");
    const c = capture();
    expect(await main(["reconstruct", FIXTURE_DIR, src, dst, "--backend", "cpu"], c.io)).toBe(0);
    const img = await readImage(dst);
    expect([img.width, img.height]).toEqual([32, 32]);
    expect(c.out[0]).toContain("a-recon.png");
  });

  it("reconstructs a folder into a folder (PNG per image, non-images skipped)", async () => {
    const dir = join(tmp, "in");
    mkdirSync(dir);
    await writeTestImage(join(dir, "x.png"), 32, 32);
    await writeTestImage(join(dir, "y.jpg"), 64, 48);
    writeFileSync(join(dir, "notes.txt"), "not an image");
    const outDir = join(tmp, "out");
    const c = capture();
    expect(await main(["reconstruct", FIXTURE_DIR, dir, outDir, "--batch-size", "1"], c.io)).toBe(0);
    expect(existsSync(join(outDir, "x.png"))).toBe(true);
    expect(existsSync(join(outDir, "y.png"))).toBe(true);
    expect(c.out).toHaveLength(2);
  });

  it("fails with exit code 1 and a message naming the file", async () => {
    const good = join(tmp, "good.png");
    await writeTestImage(good, 32, 32);

    let c = capture();
    expect(await main(["reconstruct", FIXTURE_DIR, join(tmp, "missing.png"), join(tmp, "o.png")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/missing\.png: no such file or folder/);

    const notModel = join(tmp, "not-a-model");
    mkdirSync(notModel);
    c = capture();
    expect(await main(["reconstruct", notModel, good, join(tmp, "o.png")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/not-a-model: not a model folder \(no config.json\)/);

    const noWeights = join(tmp, "no-weights");
    mkdirSync(noWeights);
    copyFileSync(join(FIXTURE_DIR, "config.json"), join(noWeights, "config.json"));
    c = capture();
    expect(await main(["reconstruct", noWeights, good, join(tmp, "o.png")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/no-weights: found neither model.safetensors/);

    const corrupt = join(tmp, "corrupt.png");
    writeFileSync(corrupt, Buffer.from("this is not a png"));
    c = capture();
    expect(await main(["reconstruct", FIXTURE_DIR, corrupt, join(tmp, "o2.png")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/corrupt\.png: cannot read image/);

    const empty = join(tmp, "empty-folder");
    mkdirSync(empty);
    c = capture();
    expect(await main(["reconstruct", FIXTURE_DIR, empty, join(tmp, "o3")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/empty-folder: no image files/);

    c = capture();
    expect(await main(["reconstruct", FIXTURE_DIR, good], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/reconstruct: expected <model-dir> <in> <out>/);

    c = capture();
    expect(await main(["paint"], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/unknown command "paint"/);

    c = capture();
    expect(await main(["reconstruct", FIXTURE_DIR, good, join(tmp, "o4.png"), "--batch-size", "0"], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/--batch-size: expected a positive integer/);
  });

  it("prints help", async () => {
    const c = capture();
    expect(await main(["--help"], c.io)).toBe(0);
    expect(c.out[0]).toMatch(/Usage: mae reconstruct/);
  });
});

describe("parseMaeArgs", () => {
  const paths = ["reconstruct", "model", "in.png", "out.png"];

  it("gives typed options with the defaults", () => {
    expect(parseMaeArgs(paths)).toEqual({ command: "reconstruct", args: ["model", "in.png", "out.png"], options: { batchSize: 8 }, help: false });
    const o = parseMaeArgs([...paths, "--batch-size", "3", "--backend", "cpu"]).options;
    expect(o).toEqual({ batchSize: 3, backend: "cpu" });
    expect(parseMaeArgs(["reconstruct", "--batch-size=2", "model", "in", "out"]).options.batchSize).toBe(2);
  });

  it("--help skips validation", () => {
    expect(parseMaeArgs(["--help", "--batch-size", "x"]).help).toBe(true);
    expect(parseMaeArgs(["-h"]).help).toBe(true);
  });

  it.each([
    [[...paths, "--bogus"], /Unknown option '--bogus'/],
    [[...paths, "--batch-size", "abc"], /--batch-size: expected a positive integer, got "abc"/],
    [[...paths, "--batch-size", "1.5"], /--batch-size: expected a positive integer, got 1.5/],
    [[...paths, "--batch-size", "0"], /--batch-size: expected a positive integer, got 0/],
    [[...paths, "--backend", "gpu"], /--backend: expected one of tensorflow-gpu, tensorflow, wasm, cpu, got "gpu"/],
    [[...paths, "--batch-size"], /--batch-size <value>' argument missing/],
    [["reconstruct", "model", "in.png"], /reconstruct: expected <model-dir> <in> <out>, got 2 argument/],
    [["paint"], /unknown command "paint"/],
    [[], /Usage: mae reconstruct/],
  ])("rejects %j naming the flag or the command", (argv, message) => {
    expect(() => parseMaeArgs(argv as string[])).toThrow(message);
  });
});
