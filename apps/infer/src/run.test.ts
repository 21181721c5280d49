import { beforeAll, describe, expect, it } from "vitest";
import { cpSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { initBackend, readImage, writeImage } from "@lm4lv/core";
import { LM4LV, loadModels } from "@lm4lv/pipeline";
import { writeTinyModels, syntheticPhoto } from "@lm4lv/pipeline/testing";
import { DEFAULT_MODELS, runInfer } from "./run.js";

const root = mkdtempSync(join(tmpdir(), "lm4lv-infer-"));
const ckpt = join(root, "ckpt");
let dirs: { maeDir: string; llmDir: string };

function capture() {
  const out: string[] = [], err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
}

beforeAll(async () => {
  await initBackend(process.env.LM4LV_BACKEND ?? "wasm");
  dirs = writeTinyModels(join(root, "models"));
  const model = LM4LV.create(await loadModels({ mae: dirs.maeDir, llm: dirs.llmDir }), { task: "denoise", seed: 2 });
  model.save(ckpt, 0);
  mkdirSync(join(root, "in"));
  mkdirSync(join(root, "clean"));
  for (const k of [0, 1]) {
    await writeImage(join(root, "in", `img${k}.png`), syntheticPhoto(20, k)); // not the MAE's 16 px: resized
    await writeImage(join(root, "clean", `img${k}.png`), syntheticPhoto(20, k + 5));
  }
  writeFileSync(join(root, "in", "broken.png"), "not an image");
});

describe("pnpm infer", () => {
  it("restores a single image to the MAE's size and writes a comparison", async () => {
    const c = capture();
    const code = await runInfer(["--checkpoint", ckpt, join(root, "in", "img0.png"), "--out", join(root, "out1")], c.io);
    expect(code).toBe(0);
    const img = await readImage(join(root, "out1", "img0.png"));
    expect([img.width, img.height]).toEqual([16, 16]);
    const cmp = await readImage(join(root, "out1", "img0_compare.png"));
    expect(cmp.width).toBe(16 * 2 + 2);
  });

  it("processes a folder with clean targets, reports PSNR/SSIM, and keeps going past a broken file", async () => {
    const c = capture();
    const code = await runInfer(["--checkpoint", ckpt, join(root, "in"), "--clean", join(root, "clean"), "--out", join(root, "out2"), "--json"], c.io);
    expect(code).toBe(2); // one item failed
    const res = JSON.parse(c.out.join("\n"));
    const byName = Object.fromEntries(res.images.map((r: { name: string }) => [r.name, r]));
    expect(byName.broken.error).toMatch(/broken\.png: cannot read image/);
    for (const k of [0, 1]) {
      const s = byName[`img${k}`].scores;
      expect(s.input.psnr).toBeGreaterThan(0);
      expect(s.output.ssim).toBeLessThanOrEqual(1);
      expect(existsSync(join(root, "out2", `img${k}.png`))).toBe(true);
    }
    expect(res.mean.output.psnr).toBeCloseTo((byName.img0.scores.output.psnr + byName.img1.scores.output.psnr) / 2, 6);
  });

  it("gives the same image with the ONNX Runtime and the tfjs engines (max 1/255)", async () => {
    const c1 = capture(), c2 = capture();
    expect(await runInfer(["--checkpoint", ckpt, join(root, "in", "img1.png"), "--out", join(root, "o-ort"), "--engine", "ort", "--json"], c1.io)).toBe(0);
    expect(await runInfer(["--checkpoint", ckpt, join(root, "in", "img1.png"), "--out", join(root, "o-tfjs"), "--engine", "tfjs", "--json"], c2.io)).toBe(0);
    expect(JSON.parse(c1.out.join("")).engine).toBe("onnxruntime");
    expect(JSON.parse(c2.out.join("")).engine).toMatch(/^tfjs-/);
    const a = await readImage(join(root, "o-ort", "img1.png"));
    const b = await readImage(join(root, "o-tfjs", "img1.png"));
    let max = 0;
    for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i] - b.data[i]) * 255);
    expect(max).toBeLessThanOrEqual(1.0001);
  });

  it("reads a pairs JSON in the reference format", async () => {
    const json = join(root, "pairs.json");
    writeFileSync(json, JSON.stringify([{ image: ["in/img1.png", "clean/img1.png"], conversations: [] }]));
    const c = capture();
    expect(await runInfer(["--checkpoint", ckpt, json, "--out", join(root, "out3")], c.io)).toBe(0);
    expect(c.out.join("\n")).toMatch(/\| 0000_img1 \| \d+\.\d\d \|/);
  });

  it("gives clear errors for a missing checkpoint, a non-checkpoint folder and models of another width", async () => {
    let c = capture();
    expect(await runInfer(["--checkpoint", join(root, "nope"), join(root, "in")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/nope: checkpoint folder not found/);
    c = capture();
    expect(await runInfer(["--checkpoint", join(root, "in"), join(root, "in", "img0.png")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/not an LM4LV checkpoint \(no lm4lv\.json\)/);
    // a checkpoint whose adapters were made for another LLM width
    const other = writeTinyModels(join(root, "other"), { imageSize: 16 });
    const models = await loadModels({ mae: other.maeDir, llm: other.llmDir });
    const wide = new (await import("@lm4lv/adapters")).LM4LVAdapters({ visionHidden: 24, llmHidden: 48 });
    const { saveAdapters } = await import("@lm4lv/adapters");
    saveAdapters(join(root, "bad-ckpt"), wide, { visionModel: other.maeDir, llm: other.llmDir, task: "denoise", numVisualTokens: models.vision.numTokens, step: 0 });
    c = capture();
    expect(await runInfer(["--checkpoint", join(root, "bad-ckpt"), join(root, "in", "img0.png")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/adapter\.weight: expected shape \[48, 24\]|llmHidden|48/);
  });

  it("restores a copied checkpoint with --mae/--llm, and names the lm4lv.json field it cannot resolve without them", async () => {
    const copy = join(mkdtempSync(join(tmpdir(), "lm4lv-infer-copy-")), "ckpt");
    mkdirSync(copy);
    for (const f of ["adapters.safetensors", "lm4lv.json"]) cpSync(join(ckpt, f), join(copy, f));
    const img = join(root, "in", "img0.png");
    let c = capture();
    expect(await runInfer(["--checkpoint", copy, img, "--out", join(root, "out5"), "--engine", "tfjs"], c.io)).toBe(1);
    const err = c.err.join("\n");
    expect(err).toContain(`${join(copy, "lm4lv.json")}: field "visionModel" = "../models/mae" is not a folder with config.json; tried:`);
    expect(err).toContain(`${resolve(copy, "../models/mae")} (relative to the checkpoint)`);
    expect(err).toContain("--mae on the command line");

    c = capture();
    expect(await runInfer(["--checkpoint", copy, "--mae", dirs.maeDir, "--llm", dirs.llmDir, img, "--out", join(root, "out5"), "--engine", "tfjs"], c.io)).toBe(0);
    expect(await runInfer(["--checkpoint", ckpt, img, "--out", join(root, "out6"), "--engine", "tfjs"], capture().io)).toBe(0);
    const [a, b] = [await readImage(join(root, "out5", "img0.png")), await readImage(join(root, "out6", "img0.png"))];
    expect(Array.from(a.data)).toEqual(Array.from(b.data));

    // a given folder wins over a reference that resolves
    c = capture();
    expect(await runInfer(["--checkpoint", ckpt, "--mae", join(root, "in"), img, "--engine", "tfjs"], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/mae folder .*in: no config\.json there \(given instead of .*lm4lv\.json field "visionModel"\)/);
  });

  it.skipIf(!existsSync(join(DEFAULT_MODELS, "denoise", "lm4lv.json")))("--quantize int8 on the embedded default restores the bundled example within 0.1 dB PSNR of fp32", async () => {
    const cache = join(root, "default-onnx"); // not the checkpoint's own onnx/ folder
    const psnr: Record<string, number> = {};
    for (const q of ["fp32", "int8"]) {
      const c = capture();
      expect(await runInfer(["--quantize", q, "--cache", cache, "--out", join(root, `default-${q}`), "--json", "--no-mae-baseline"], c.io), c.err.join("\n")).toBe(0);
      const res = JSON.parse(c.out.join(""));
      expect([res.engine, res.weights]).toEqual(["onnxruntime", q]);
      psnr[q] = res.images[0].scores.output.psnr;
    }
    expect(existsSync(join(cache, "int8", "manifest.json"))).toBe(true);
    // measured: 12.946 dB (fp32) vs 12.938 dB (int8)
    expect(Math.abs(psnr.int8 - psnr.fp32)).toBeLessThan(0.1);
  });

  it("names --quantize when its value is not a weight format, or when the tfjs engine is asked for", async () => {
    let c = capture();
    expect(await runInfer(["--checkpoint", ckpt, "--quantize", "int3", join(root, "in", "img0.png")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/--quantize: expected one of fp32, fp16, int8, int4, got "int3"/);
    c = capture();
    expect(await runInfer(["--checkpoint", ckpt, "--quantize", "int4", "--engine", "tfjs", join(root, "in", "img0.png")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/--quantize: needs the ONNX Runtime engine \(--engine ort\); tfjs runs fp32 weights, got "int4"/);
  });

  it("--int4-block-size 128 exports int4 with blocks of 128 to <cache>/int4-b128; it is refused with another format", async () => {
    const cache = join(root, "onnx-b128");
    let c = capture();
    expect(await runInfer(["--checkpoint", ckpt, "--quantize", "int4", "--int4-block-size", "128", "--cache", cache, "--out", join(root, "out-b128"), "--json", join(root, "in", "img0.png")], c.io), c.err.join("\n")).toBe(0);
    const res = JSON.parse(c.out.join(""));
    expect([res.engine, res.weights]).toEqual(["onnxruntime", "int4-b128"]);
    expect(JSON.parse(readFileSync(join(cache, "int4-b128", "manifest.json"), "utf8")).weights).toMatchObject({ format: "int4", int4BlockSize: 128 });
    expect(existsSync(join(cache, "int4"))).toBe(false);
    c = capture();
    expect(await runInfer(["--checkpoint", ckpt, "--quantize", "int8", "--int4-block-size", "128", join(root, "in", "img0.png")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/--int4-block-size: only with --quantize int4 \(--quantize is int8\), got 128/);
    c = capture();
    expect(await runInfer(["--checkpoint", ckpt, "--quantize", "int4", "--int4-block-size", "100", join(root, "in", "img0.png")], c.io)).toBe(1);
    expect(c.err.join("\n")).toMatch(/--int4-block-size: expected one of 32, 64, 128, got 100/);
  });
});
