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
