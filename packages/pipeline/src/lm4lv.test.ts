import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend } from "@lm4lv/core";
import type { LlamaForCausalLM } from "@lm4lv/llm";
import { FolderPairDataset } from "@lm4lv/data";
import { LM4LV, loadModels } from "./lm4lv.js";
import { trainLM4LV } from "./lm4lv-training.js";
import { writeTinyModels, writeSyntheticPhotos, syntheticPhoto } from "./testing.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const root = mkdtempSync(join(tmpdir(), "lm4lv-pipe-"));
let models: Awaited<ReturnType<typeof loadModels>>;
let photos: string;

beforeAll(async () => {
  await initBackend(process.env.LM4LV_BACKEND ?? "wasm");
  const dirs = writeTinyModels(root);
  models = await loadModels({ mae: dirs.maeDir, llm: dirs.llmDir });
  photos = join(root, "photos");
  await writeSyntheticPhotos(photos, 6, 16);
});

describe("LM4LV pipeline", () => {
  it("lays out the pair sample with 17 visual tokens per image and 10 task tokens", () => {
    const m = LM4LV.create(models, { seed: 1 });
    const seq = m.layout();
    const images = seq.spans.filter((s) => s.kind === "image");
    expect(images.map((s) => s.length)).toEqual([17, 17]);
    expect(seq.spans.find((s) => s.kind === "task")?.length).toBe(10);
    expect(seq.visionTargets.length).toBe(17);
    // the state just before the HQ span predicts HQ token 0 (spec §4's one-position shift)
    expect(seq.visionTargets[0]).toEqual({ position: images[1].start - 1, imageIndex: 1, tokenIndex: 0 });
    expect(m.prompt().inputIds.length).toBeLessThan(seq.inputIds.length);
  });

  it("loss = CE + MSE, finite, and the MSE part equals a direct computation from the LM outputs", async () => {
    const m = LM4LV.create(models, { seed: 1 });
    const pair = { lq: syntheticPhoto(16, 1), hq: syntheticPhoto(16, 2) };
    const { loss, ce, mse } = m.loss([pair]);
    const [l, c, s] = [loss.dataSync()[0], ce.dataSync()[0], mse.dataSync()[0]];
    expect(Number.isFinite(l)).toBe(true);
    expect(l).toBeCloseTo(c + s, 5);
    // independent MSE: de-adapter(hidden at target positions) vs raw HQ features
    const seq = m.layout();
    const feats = await m.encode([pair.lq, pair.hq]); // [2, 17, 24]
    expect(Array.from(m.encodeSync([pair.lq, pair.hq]).dataSync())).toEqual(Array.from(feats.dataSync()));
    const lm = models.lm as LlamaForCausalLM;
    const embeds = tf.tidy(() => {
      const parts: tf.Tensor[] = [];
      let pos = 0;
      const spans = [...seq.spans].sort((a, b) => a.start - b.start);
      for (const sp of spans) {
        if (sp.start > pos) parts.push(lm.embedSync(tf.tensor2d([seq.inputIds.slice(pos, sp.start)], undefined, "int32")).squeeze([0]));
        if (sp.kind === "image") parts.push(m.adapters.adapt(feats.slice([sp.imageIndex, 0, 0], [1, 17, 24])).squeeze([0]));
        else parts.push(m.adapters.namedVariables().task_tokens);
        pos = sp.start + sp.length;
      }
      if (pos < seq.inputIds.length) parts.push(lm.embedSync(tf.tensor2d([seq.inputIds.slice(pos)], undefined, "int32")).squeeze([0]));
      return tf.concat(parts, 0).expandDims(0) as tf.Tensor3D;
    });
    const out = await models.lm.forward({ inputsEmbeds: embeds });
    const h = out.lastHiddenState.arraySync()[0];
    const target = feats.arraySync()[1];
    const deW = m.adapters.namedVariables()["de_adapter.weight"].arraySync() as number[][]; // [Dv, Dl]
    const deB = m.adapters.namedVariables()["de_adapter.bias"].arraySync() as number[];
    let acc = 0, n = 0;
    for (const t of seq.visionTargets) {
      for (let j = 0; j < 24; j++) {
        let v = deB[j];
        for (let k = 0; k < 32; k++) v += deW[j][k] * h[t.position][k];
        acc += (v - target[t.tokenIndex][j]) ** 2;
        n++;
      }
    }
    expect(Math.abs(acc / n - s) / s).toBeLessThan(1e-4);
    tf.dispose([loss, ce, mse, feats, embeds, out.logits, out.lastHiddenState]);
  });

  it("teacher forcing with the target image predicts the same first token as generation", async () => {
    const m = LM4LV.create(models, { seed: 6 });
    const lq = syntheticPhoto(16, 1), hq = syntheticPhoto(16, 2);
    const img = await m.teacherForced(lq, hq);
    expect([img.width, img.height]).toEqual([16, 16]);
    // token 0 is predicted from the prompt alone: identical in both paths
    const r = await m.restore(lq);
    const seq = m.layout();
    const feats = await m.encode([lq, hq]);
    const rows = [0, 1].map((k) => feats.slice([k, 0, 0], [1, 17, 24]).reshape([17, 24]) as tf.Tensor2D);
    const { assembleInputsEmbeds } = await import("@lm4lv/adapters");
    const out = await models.lm.forward({ inputsEmbeds: await assembleInputsEmbeds(models.lm, seq, rows, m.adapters) });
    const h0 = out.lastHiddenState.slice([0, seq.visionTargets[0].position, 0], [1, 1, 32]);
    const f0 = m.adapters.deAdapt(h0 as tf.Tensor3D).dataSync();
    const g0 = r.features.slice([0, 0, 0], [1, 1, 24]).dataSync();
    for (let i = 0; i < 24; i++) expect(Math.abs(f0[i] - g0[i])).toBeLessThan(1e-4);
    r.features.dispose();
  });

  it("restores an image of the MAE's size, identically with and without the KV cache", async () => {
    const m = LM4LV.create(models, { seed: 3 });
    const a = await m.restore(syntheticPhoto(24, 0)); // resized to 16 first
    const b = await m.restore(syntheticPhoto(24, 0), { useCache: false });
    expect([a.image.width, a.image.height]).toEqual([16, 16]);
    expect(a.features.shape).toEqual([1, 17, 24]);
    const fa = a.features.dataSync(), fb = b.features.dataSync();
    for (let i = 0; i < fa.length; i++) expect(Math.abs(fa[i] - fb[i])).toBeLessThan(1e-4);
    tf.dispose([a.features, b.features]);
  });

  it("training lowers the loss, saves a loadable checkpoint, and resume ends with identical adapters", async () => {
    const ds = new FolderPairDataset(photos, "denoise", { size: 16, seed: 0 });
    const full = join(root, "run-full");
    const m1 = LM4LV.create(models, { seed: 5 });
    const r1 = await trainLM4LV({ model: m1, train: ds, val: ds, valCount: 1, outDir: full, steps: 12, batchSize: 2, lr: 3e-3, seed: 0, checkpointEvery: 4, progress: false, handleSigint: false });
    expect(r1.status).toBe("completed");
    const losses = r1.history.map((h) => h.loss);
    const first = (losses[0] + losses[1]) / 2, last = (losses[10] + losses[11]) / 2;
    expect(last).toBeLessThan(first);
    expect(existsSync(join(full, "samples.png"))).toBe(true);
    expect(existsSync(join(full, "loss.svg")) && existsSync(join(full, "loss.csv"))).toBe(true);
    const info = JSON.parse(readFileSync(join(full, "lm4lv.json"), "utf8"));
    expect(info.task).toBe("denoise");
    expect(info.step).toBe(12);
    const re = await LM4LV.fromCheckpoint(full);
    expect(re.numVisualTokens).toBe(17);
    const wA = m1.adapters.namedVariables()["adapter.weight"].dataSync();
    expect(Array.from(re.adapters.namedVariables()["adapter.weight"].dataSync())).toEqual(Array.from(wA));

    // interrupted at step 6, then resumed to 12
    const part = join(root, "run-part");
    const m2 = LM4LV.create(models, { seed: 5 });
    const r2 = await trainLM4LV({ model: m2, train: ds, outDir: part, steps: 12, batchSize: 2, lr: 3e-3, seed: 0, checkpointEvery: 4, progress: false, handleSigint: false });
    expect(r2.status).toBe("completed"); // uninterrupted control run
    const m3 = LM4LV.create(models, { seed: 5 });
    const ctl3 = new AbortController();
    let steps = 0;
    const partial = join(root, "run-interrupted");
    const r3 = await trainLM4LV({ model: m3, train: ds, outDir: partial, steps: 12, batchSize: 2, lr: 3e-3, seed: 0, checkpointEvery: 100, progress: false, handleSigint: false, signal: ctl3.signal, onStep: () => { if (++steps === 6) ctl3.abort(); } });
    expect(r3.status).toBe("stopped");
    expect(r3.step).toBe(6);
    const m4 = LM4LV.create(models, { seed: 99 }); // different init: everything must come from the checkpoint
    const r4 = await trainLM4LV({ model: m4, train: ds, outDir: partial, steps: 12, batchSize: 2, lr: 3e-3, seed: 0, checkpointEvery: 100, progress: false, handleSigint: false, resume: true });
    expect(r4.step).toBe(12);
    for (const name of ["adapter.weight", "de_adapter.bias", "task_tokens"] as const) {
      expect(Array.from(m4.adapters.namedVariables()[name].dataSync())).toEqual(Array.from(m2.adapters.namedVariables()[name].dataSync()));
    }
  });
});

describe("tiled LM4LV (tiles: 2)", () => {
  /** The w×w window of `img` at (x0, y0), cut here without splitTiles. */
  const crop = (img: { width: number; data: Float32Array }, x0: number, y0: number, w: number) => {
    const data = new Float32Array(w * w * 3);
    for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = img.data[((y0 + y) * img.width + x0 + x) * 3 + c];
    return { width: w, height: w, data };
  };
  const corners = [[0, 0], [16, 0], [0, 16], [16, 16]]; // row by row

  it("restores a 32 px image as four 16 px sequences: each quarter is the untiled model's restoration of that quarter", async () => {
    const tiled = LM4LV.create(models, { seed: 21, tiles: 2 });
    const untiled = new LM4LV(models, tiled.adapters, tiled.task); // the same adapters, one sequence per image
    expect([tiled.imageSize, tiled.tileSize, untiled.imageSize]).toEqual([32, 16, 16]);
    const lq = syntheticPhoto(32, 3), hq = syntheticPhoto(32, 5);
    const r = await tiled.restore(lq);
    expect([r.image.width, r.image.height]).toEqual([32, 32]);
    expect(r.features.shape).toEqual([4, 17, 24]);
    const rec = (await tiled.reconstruct([lq]))[0];
    const tf_ = await tiled.teacherForced(lq, hq);
    for (const [k, [x0, y0]] of corners.entries()) {
      const q = await untiled.restore(crop(lq, x0, y0, 16));
      const got = crop(r.image, x0, y0, 16);
      for (let i = 0; i < got.data.length; i++) expect(Math.abs(got.data[i] - q.image.data[i])).toBeLessThan(1e-5);
      const fk = r.features.slice([k, 0, 0], [1, 17, 24]).dataSync(), fq = q.features.dataSync();
      for (let i = 0; i < fq.length; i++) expect(Math.abs(fk[i] - fq[i])).toBeLessThan(1e-5);
      q.features.dispose();
      const m = (await untiled.reconstruct([crop(lq, x0, y0, 16)]))[0];
      expect(Array.from(crop(rec, x0, y0, 16).data)).toEqual(Array.from(m.data));
      const t = await untiled.teacherForced(crop(lq, x0, y0, 16), crop(hq, x0, y0, 16));
      const tq = crop(tf_, x0, y0, 16);
      for (let i = 0; i < t.data.length; i++) expect(Math.abs(tq.data[i] - t.data[i])).toBeLessThan(1e-5);
    }
    r.features.dispose();
    // inputs of another size are resized to 32 first; encode takes tiles only
    expect((await tiled.restore(syntheticPhoto(24, 0))).image.width).toBe(32);
    await expect(tiled.encode([lq])).rejects.toThrow("image is 32×32, the MAE expects 16×16 (resize first, e.g. with fit(), and cut tiles with split())");
    expect(() => tiled.split(syntheticPhoto(16, 0))).toThrow("image is 16×16, this LM4LV restores 32×32");
    expect(() => new LM4LV(models, tiled.adapters, "denoise", {}, 0)).toThrow("tiles must be a positive integer, got 0");
  });

  it("pairs tile k of the input with tile k of the target, trains on tiles and keeps `tiles` in its checkpoint", async () => {
    const tiled = LM4LV.create(models, { seed: 22, tiles: 2 });
    const lq = syntheticPhoto(32, 1), hq = syntheticPhoto(32, 2);
    const pairs = tiled.splitPairs([{ lq, hq }]);
    expect(pairs.length).toBe(4);
    for (const [k, [x0, y0]] of corners.entries()) {
      expect(Array.from(pairs[k].lq.data)).toEqual(Array.from(crop(lq, x0, y0, 16).data));
      expect(Array.from(pairs[k].hq.data)).toEqual(Array.from(crop(hq, x0, y0, 16).data));
    }
    const ds = new FolderPairDataset(photos, "denoise", { size: 32, seed: 0 });
    const out = join(root, "run-tiled");
    const r = await trainLM4LV({ model: tiled, train: ds, outDir: out, steps: 6, batchSize: 1, lr: 3e-3, seed: 0, checkpointEvery: 3, progress: false, handleSigint: false });
    expect(r.status).toBe("completed");
    expect(r.history.every((h) => Number.isFinite(h.loss))).toBe(true);
    const info = JSON.parse(readFileSync(join(out, "lm4lv.json"), "utf8"));
    expect([info.tiles, info.numVisualTokens]).toEqual([2, 17]);
    const re = await LM4LV.fromCheckpoint(out);
    expect([re.tiles, re.imageSize]).toEqual([2, 32]);
    expect(Array.from(re.adapters.namedVariables()["adapter.weight"].dataSync())).toEqual(Array.from(tiled.adapters.namedVariables()["adapter.weight"].dataSync()));
    // the first step's loss is the loss of the four tile pairs of the first image drawn
    const first = r.history[0].loss;
    const candidates = await Promise.all(Array.from({ length: ds.length }, async (_, i) => {
      const p = await ds.get(i, 0);
      const fresh = LM4LV.create(models, { seed: 22, tiles: 2 });
      const { loss } = fresh.loss(fresh.splitPairs([{ lq: await fresh.fit(p.lq), hq: await fresh.fit(p.hq) }]));
      return loss.dataSync()[0];
    }));
    expect(Math.min(...candidates.map((c) => Math.abs(c - first) / first))).toBeLessThan(1e-4);
  });
});

describe("portable checkpoints", () => {
  const adapterValues = (m: LM4LV) => Object.fromEntries(Object.entries(m.adapters.namedVariables()).map(([n, v]) => [n, Array.from(v.dataSync())]));
  /** Copies the two checkpoint files to a fresh folder `name` under a new temporary directory. */
  const copyCheckpoint = (src: string, name: string) => {
    const dst = join(mkdtempSync(join(tmpdir(), "lm4lv-copied-")), name);
    mkdirSync(dst);
    for (const f of ["adapters.safetensors", "lm4lv.json"]) cpSync(join(src, f), join(dst, f));
    return dst;
  };
  let ckpt: string;
  let saved: LM4LV;
  beforeAll(() => {
    ckpt = join(root, "runs", "portable");
    saved = LM4LV.create(models, { task: "denoise", seed: 11 });
    saved.save(ckpt, 3);
  });

  it("a checkpoint copied to another folder restores (its models found by name) with the same adapters and output", async () => {
    expect(JSON.parse(readFileSync(join(ckpt, "lm4lv.json"), "utf8"))).toMatchObject({ visionModel: "../../mae", llm: "../../llm", extra: { tokenizer: "../../llm" } });
    const copy = copyCheckpoint(ckpt, "portable");
    const re = await LM4LV.fromCheckpoint(copy, { modelDirs: [join(root, "elsewhere"), root] });
    expect([re.models.visionDir, re.models.llmDir, re.models.tokenizerDir]).toEqual([join(root, "mae"), join(root, "llm"), join(root, "llm")]);
    expect(adapterValues(re)).toEqual(adapterValues(saved));
    const a = await saved.restore(syntheticPhoto(16, 4));
    const b = await re.restore(syntheticPhoto(16, 4));
    expect(Array.from(b.features.dataSync())).toEqual(Array.from(a.features.dataSync()));
    tf.dispose([a.features, b.features]);
  });

  it("a copy of a shipped checkpoint restores with the repository's embedded models", async () => {
    const shipped = join(REPO, "models", "lm4lv-tiny", "identity");
    const copy = copyCheckpoint(shipped, "identity");
    const original = await LM4LV.fromCheckpoint(shipped);
    const re = await LM4LV.fromCheckpoint(copy);
    expect([re.models.visionDir, re.models.llmDir]).toEqual([join(REPO, "models", "mae-tiny"), join(REPO, "models", "lm-wide")]);
    expect(re.task).toBe("identity");
    expect(re.tiles).toBe(1); // checkpoints written before `tiles` existed are untiled
    expect(adapterValues(re)).toEqual(adapterValues(original));
  });

  it("names lm4lv.json, the field and the places tried when a model is not found; given folders win", async () => {
    const copy = copyCheckpoint(ckpt, "portable");
    const err = await LM4LV.fromCheckpoint(copy, { modelDirs: [join(root, "elsewhere")] }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toContain(`${join(copy, "lm4lv.json")}: field "visionModel" = "../../mae" is not a folder with config.json; tried:`);
    expect(msg).toContain(`${resolve(copy, "../../mae")} (relative to the checkpoint)`);
    expect(msg).toContain(`${join(root, "elsewhere", "mae")} (model "mae" in ${join(root, "elsewhere")})`);

    const other = writeTinyModels(join(root, "other-models"), { seed: 7 });
    const re = await LM4LV.fromCheckpoint(copy, { mae: other.maeDir, llm: other.llmDir, modelDirs: [] });
    expect([re.models.visionDir, re.models.llmDir, re.models.tokenizerDir]).toEqual([other.maeDir, other.llmDir, other.llmDir].map((d) => resolve(d)));
    expect(adapterValues(re)).toEqual(adapterValues(saved));
    // a given folder also wins over a reference that resolves
    const mixed = await LM4LV.fromCheckpoint(ckpt, { mae: other.maeDir });
    expect([mixed.models.visionDir, mixed.models.llmDir]).toEqual([resolve(other.maeDir), join(root, "llm")]);
  });
});
