import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend, readSafetensors, transpose2d, writeSafetensors } from "@lm4lv/core";
import type { TensorToWrite } from "@lm4lv/core";
import { Tokenizer } from "@lm4lv/tokenizer";
import { Trainer, TrainRng, runTraining } from "@lm4lv/train";
import { LlamaForCausalLM } from "./model.js";
import { encodeCorpus, splitDocuments, tokenWindowBatches, parseRepeatOptions, trainLmTokenizer, LM_TEMPLATE_TEXT } from "./corpus.js";
import type { TokenBatch } from "./corpus.js";
import { embedLookup, lmLoss } from "./loss.js";
import { evaluatePerplexity, evaluatedTargets, unigramPerplexity } from "./evaluation.js";
import { trainLm } from "./training.js";
import type { LmTrainOptions } from "./training.js";

const TEXT = `The lighthouse keeper climbed the narrow stairs every evening and lit the great lamp.
Ships far out on the grey water saw the light and turned away from the rocks.

In the morning the keeper wrote the weather in his book: wind from the west, a calm sea, rain by noon.
He cleaned the glass, trimmed the wick and carried oil up from the store room below.

The harbour town kept its boats in a row along the quay. Fishermen mended their nets in the sun
and sold their catch in the market square before the church bell rang at midday.

When storms came the keeper did not sleep. He watched the lamp turn and listened to the waves
breaking on the rocks, and he counted the ships that passed safely through the night.`;

let tokenizer: Tokenizer;
let tokens: Int32Array;
const tmp: string[] = [];

/** A Llama whose every weight is a trainable variable, by HF name (HF layout). */
interface TrainableLlama {
  model: LlamaForCausalLM;
  variables: Record<string, tf.Variable>;
}

function tinyModel(seed = 0): TrainableLlama {
  const model = LlamaForCausalLM.fromConfig(
    {
      vocab_size: tokenizer.vocabSize,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 64,
      tie_word_embeddings: true,
      bos_token_id: tokenizer.bosId,
      eos_token_id: tokenizer.eosId,
    },
    seed,
  );
  return { model, variables: model.trainableParameters() };
}

function dispose(m: TrainableLlama): void {
  m.model.dispose();
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "lm-training-"));
  tmp.push(d);
  return d;
}

beforeAll(async () => {
  await initBackend();
  const docs = splitDocuments(TEXT);
  const files = trainLmTokenizer(docs, { vocabSize: 300, templateCopies: 20 });
  tokenizer = Tokenizer.fromJSON(files.tokenizerJson, files.tokenizerConfig);
  tokens = encodeCorpus(tokenizer, docs);
});

afterAll(() => tmp.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("tokenizer and corpus", () => {
  it("trains a byte-level BPE with BOS/EOS/UNK, whole <Img>/</Img> and a compact template", () => {
    expect(tokenizer.vocabSize).toBe(300);
    expect([tokenizer.unkId, tokenizer.bosId, tokenizer.eosId]).toEqual([0, 1, 2]);
    expect(tokenizer.encode("<Img>")).toEqual([tokenizer.tokenToId("<Img>")]);
    expect(tokenizer.encode("</Img>")).toEqual([tokenizer.tokenToId("</Img>")]);
    const pieces = tokenizer.encode("### Human: <Img>").map((id) => tokenizer.idToToken(id));
    expect(pieces).toEqual(["###", "ĠHuman", ":", "Ġ", "<Img>"]);
    expect(tokenizer.encode(LM_TEMPLATE_TEXT).map((id) => tokenizer.idToToken(id))).toContain("ĠAssistant");
  });

  it("the template is the tokenizer's reference turns without their images, byte for byte", () => {
    expect(LM_TEMPLATE_TEXT).toBe("### Human: <Img></Img> <task>\n### Assistant: <Img></Img>\n###");
  });

  it("encodes each document as BOS … EOS and splits documents on blank lines", () => {
    const docs = splitDocuments("first doc\nline two\n\n\nsecond doc\n");
    expect(docs).toEqual(["first doc\nline two", "second doc"]);
    const ids = Array.from(encodeCorpus(tokenizer, docs));
    const a = tokenizer.encode(docs[0]);
    const b = tokenizer.encode(docs[1]);
    expect(ids).toEqual([1, ...a, 2, 1, ...b, 2]);
    expect(tokenizer.decode(a)).toBe(docs[0]);
  });
});

describe("batches", () => {
  it("draws contiguous windows of seqLen + 1 tokens, reproducibly from the RNG state", () => {
    const batches = tokenWindowBatches(tokens, { batchSize: 3, seqLen: 10 });
    const rng = new TrainRng(7);
    const state = rng.getState();
    const first = batches(1, rng);
    expect(first.ids.length).toBe(3 * 11);
    for (let b = 0; b < 3; b++) {
      const row = Array.from(first.ids.subarray(b * 11, (b + 1) * 11));
      const found = Array.from({ length: tokens.length - 10 }, (_, s) => s).some((s) => row.every((t, i) => tokens[s + i] === t));
      expect(found).toBe(true);
    }
    rng.setState(state);
    expect(Array.from(batches(1, rng).ids)).toEqual(Array.from(first.ids));
    expect(() => tokenWindowBatches(tokens.subarray(0, 5), { batchSize: 1, seqLen: 10 })).toThrow(/fewer than seqLen/);
  });
});

describe("repeats", () => {
  it("inserts a verbatim copy of a span after the gap, the rest being contiguous corpus text", () => {
    const corpus = Int32Array.from({ length: 5000 }, (_, i) => i); // every token distinct: the layout is readable
    const repeats = parseRepeatOptions("p=1,len=5-9,gap=2-4");
    expect(repeats).toEqual({ probability: 1, minLength: 5, maxLength: 9, minGap: 2, maxGap: 4 });
    const { ids } = tokenWindowBatches(corpus, { batchSize: 8, seqLen: 31, repeats })(1, new TrainRng(3));
    for (let b = 0; b < 8; b++) {
      const row = Array.from(ids.subarray(b * 32, (b + 1) * 32));
      // the copy is where the sequence jumps back; text before and after it is contiguous
      const back = row.findIndex((t, i) => i > 0 && t < row[i - 1]);
      expect(back).toBeGreaterThan(0);
      const from = row.indexOf(row[back]);
      const run = row.slice(back).findIndex((t, i) => i > 0 && t !== row[back] + i);
      const len = run < 0 ? row.length - back : run; // the copy may close the window
      expect(len).toBeGreaterThanOrEqual(5);
      expect(len).toBeLessThanOrEqual(9);
      expect(back - from - len).toBeGreaterThanOrEqual(2);
      expect(back - from - len).toBeLessThanOrEqual(4);
      expect(row.slice(back, back + len)).toEqual(row.slice(from, from + len));
      if (back + len < row.length) expect(row[back + len]).toBe(row[back - 1] + 1);
    }
    expect(() => parseRepeatOptions("p=2,len=5,gap=1")).toThrow(/field "p"/);
    expect(() => parseRepeatOptions("p=1,len=5,gap=1,copy=2")).toThrow(/unknown field "copy"/);
    // several consecutive copies
    const multi = parseRepeatOptions("p=1,len=4,gap=3,copies=3");
    const { ids: m } = tokenWindowBatches(corpus, { batchSize: 4, seqLen: 40, repeats: multi })(1, new TrainRng(5));
    for (let b = 0; b < 4; b++) {
      const row = Array.from(m.subarray(b * 41, (b + 1) * 41));
      const back = row.findIndex((t, i) => i > 0 && t < row[i - 1]);
      const span = row.slice(back, back + 4);
      expect(row.slice(back + 4, back + 8)).toEqual(span);
      expect(row.slice(back + 8, back + 12)).toEqual(span);
      expect(row.indexOf(span[0])).toBe(back - 7); // the original, 3 tokens before the first copy
    }
    expect(() => tokenWindowBatches(corpus, { batchSize: 1, seqLen: 10, repeats })).toThrow(/do not fit/);
  });

  it("random=1 replaces the span and its copy by the same random ids from [lo, hi); the text around stays", () => {
    const corpus = Int32Array.from({ length: 5000 }, (_, i) => i);
    const repeats = parseRepeatOptions("p=1,len=6,gap=3,random=1");
    expect(repeats.random).toBe(1);
    const { ids } = tokenWindowBatches(corpus, { batchSize: 6, seqLen: 40, repeats, randomTokens: [10000, 10050] })(1, new TrainRng(7));
    for (let b = 0; b < 6; b++) {
      const row = Array.from(ids.subarray(b * 41, (b + 1) * 41));
      const synthetic = row.map((t, i) => (t >= 10000 ? i : -1)).filter((i) => i >= 0);
      expect(synthetic).toHaveLength(12); // the span (6) and its copy (6), nothing else
      const [from, at] = [synthetic[0], synthetic[6]];
      expect(synthetic).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((i) => (i < 6 ? from + i : at + i - 6)));
      expect(at - from).toBe(9); // len + gap
      expect(row.slice(at, at + 6)).toEqual(row.slice(from, from + 6));
      for (const t of row.slice(from, from + 6)) expect(t).toBeLessThan(10050);
      // the text is contiguous corpus around the synthetic tokens (span text replaced in place)
      const text = row.filter((t) => t < 10000);
      for (let i = 1; i < text.length; i++) if (i !== from) expect(text[i]).toBe(text[i - 1] + 1);
    }
    expect(() => tokenWindowBatches(corpus, { batchSize: 1, seqLen: 40, repeats })).toThrow(/randomTokens/);
    expect(() => parseRepeatOptions("p=1,len=5,gap=1,random=2")).toThrow(/field "random"/);
  });

  it("offset=D puts every copy D tokens after its span's start, whatever the span's length", () => {
    const corpus = Int32Array.from({ length: 5000 }, (_, i) => i);
    const repeats = parseRepeatOptions("p=1,len=4-12,offset=13");
    expect(repeats).toMatchObject({ minOffset: 13, maxOffset: 13, minLength: 4, maxLength: 12 });
    const { ids } = tokenWindowBatches(corpus, { batchSize: 16, seqLen: 40, repeats })(1, new TrainRng(11));
    const lengths = new Set<number>();
    for (let b = 0; b < 16; b++) {
      const row = Array.from(ids.subarray(b * 41, (b + 1) * 41));
      const back = row.findIndex((t, i) => i > 0 && t < row[i - 1]);
      const from = row.indexOf(row[back]);
      expect(back - from).toBe(13);
      const run = row.slice(back).findIndex((t, i) => i > 0 && t !== row[back] + i);
      lengths.add(run < 0 ? row.length - back : run);
    }
    expect(lengths.size).toBeGreaterThan(1);
    expect(() => parseRepeatOptions("p=1,len=5,gap=1,offset=9")).toThrow(/exactly one of/);
    expect(() => parseRepeatOptions("p=1,len=5-9,offset=3")).toThrow(/field "offset"/);
    expect(() => tokenWindowBatches(corpus, { batchSize: 1, seqLen: 20, repeats })).toThrow(/does not fit/);
  });

  it("offset=A|B-C mixes a fixed offset with a range: each window draws one range, then an offset in it", () => {
    const corpus = Int32Array.from({ length: 5000 }, (_, i) => i);
    const repeats = parseRepeatOptions("p=1,len=4-8,offset=13|20-24");
    expect(repeats).toMatchObject({ minOffset: 13, maxOffset: 24, offsetRanges: [[13, 13], [20, 24]] });
    expect(parseRepeatOptions("p=1,len=4-8,offset=13").offsetRanges).toBeUndefined();
    const { ids } = tokenWindowBatches(corpus, { batchSize: 64, seqLen: 40, repeats })(1, new TrainRng(5));
    const offsets: number[] = [];
    for (let b = 0; b < 64; b++) {
      const row = Array.from(ids.subarray(b * 41, (b + 1) * 41));
      const back = row.findIndex((t, i) => i > 0 && t < row[i - 1]);
      offsets.push(back - row.indexOf(row[back]));
    }
    for (const d of offsets) expect(d === 13 || (d >= 20 && d <= 24)).toBe(true);
    const fixed = offsets.filter((d) => d === 13).length;
    expect(fixed).toBeGreaterThan(16); // ~32 of 64 expected
    expect(fixed).toBeLessThan(48);
    expect(new Set(offsets.filter((d) => d !== 13)).size).toBeGreaterThan(2);
    expect(() => parseRepeatOptions("p=1,len=5-9,offset=13|3")).toThrow(/field "offset"/);
    expect(() => parseRepeatOptions("p=1,len=5-9,offset=13|x")).toThrow(/field "offset" should be N or A-B \(several joined by \|\)/);
    expect(() => tokenWindowBatches(corpus, { batchSize: 1, seqLen: 30, repeats })).toThrow(/does not fit/);
  });
});

describe("embedLookup", () => {
  it("gives the gathered rows and the gradient of a one-hot product", () => {
    const table = tf.randomNormal([7, 3], 0, 1, "float32", 1) as tf.Tensor2D;
    const ids = new Int32Array([2, 5, 2, 0, 6, 2]);
    const w = tf.randomNormal([2, 3, 3], 0, 1, "float32", 2);
    const f = (t: tf.Tensor) => tf.sum(tf.mul(embedLookup(t as tf.Tensor2D, ids, 2, 3), w)) as tf.Scalar;
    const g = (t: tf.Tensor) =>
      tf.sum(tf.mul(tf.matMul(tf.oneHot(tf.tensor1d(ids, "int32"), 7), t as tf.Tensor2D).reshape([2, 3, 3]), w)) as tf.Scalar;
    expect(f(table).dataSync()[0]).toBeCloseTo(g(table).dataSync()[0], 5);
    const ga = tf.grad(f)(table).dataSync();
    const gb = tf.grad(g)(table).dataSync();
    ga.forEach((v, i) => expect(v).toBeCloseTo(gb[i], 5));
  });
});

describe("training", () => {
  it("lowers the loss over a few steps", async () => {
    const m = tinyModel(1);
    const fixed = tokenWindowBatches(tokens, { batchSize: 4, seqLen: 16 })(1, new TrainRng(99));
    const before = lmLoss(m.model, fixed);
    const lossBefore = before.loss.dataSync()[0];
    before.loss.dispose();
    expect(lossBefore).toBeGreaterThan(Math.log(tokenizer.vocabSize) - 0.5);
    const result = await runTraining<TokenBatch>({
      variables: m.variables,
      loss: (b) => lmLoss(m.model, b),
      data: tokenWindowBatches(tokens, { batchSize: 4, seqLen: 16 }),
      totalSteps: 12,
      optimizer: { lr: 1e-2 },
      schedule: { kind: "constant" },
      progress: false,
      handleSigint: false,
    });
    const after = lmLoss(m.model, fixed);
    const lossAfter = after.loss.dataSync()[0];
    after.loss.dispose();
    expect(lossAfter).toBeLessThan(lossBefore - 0.5);
    expect(result.history.at(-1)!.loss).toBeLessThan(result.history[0].loss);
    dispose(m);
  });

  it("resumes bit-identically after a stop", async () => {
    const options = (m: TrainableLlama, dir: string) => ({
      variables: m.variables,
      loss: (b: TokenBatch) => lmLoss(m.model, b),
      data: tokenWindowBatches(tokens, { batchSize: 2, seqLen: 12 }),
      totalSteps: 6,
      seed: 3,
      optimizer: { lr: 5e-3 },
      checkpointDir: dir,
      progress: false as const,
      handleSigint: false,
    });
    const full = tinyModel(2);
    await runTraining(options(full, tempDir()));

    const dir = tempDir();
    const first = tinyModel(2);
    const trainer = new Trainer<TokenBatch>({ ...options(first, dir), onStep: (e, t) => (e.step === 3 ? t.stop() : undefined) });
    const stopped = await trainer.run();
    trainer.dispose();
    expect(stopped.status).toBe("stopped");
    expect(stopped.step).toBe(3);
    dispose(first);

    const resumed = tinyModel(5); // a different init: everything must come from the checkpoint
    const done = await runTraining({ ...options(resumed, dir), resume: true });
    expect(done.status).toBe("completed");
    for (const [name, v] of Object.entries(full.variables)) {
      const a = new Uint32Array(v.dataSync().buffer.slice(0));
      const b = new Uint32Array(resumed.variables[name].dataSync().buffer.slice(0));
      expect(Array.from(b), name).toEqual(Array.from(a));
    }
    dispose(full);
    dispose(resumed);
  });
});

describe("evaluation", () => {
  it("perplexity is exp(mean cross-entropy) over non-overlapping windows", () => {
    const m = tinyModel(4);
    const T = 9;
    const maxWindows = 5;
    const got = evaluatePerplexity(m.model, tokens, { seqLen: T, batchSize: 2, maxWindows });

    // Independent: logits through the plain inputIds path, log-softmax in float64.
    const total = Math.floor((tokens.length - 1) / T);
    let nll = 0;
    let n = 0;
    for (let i = 0; i < maxWindows; i++) {
      const w = Math.floor((i * total) / maxWindows);
      const window = Array.from(tokens.subarray(w * T, w * T + T + 1));
      const out = m.model.forwardSync({ inputIds: tf.tensor2d([window.slice(0, T)], [1, T], "int32") });
      const logits = out.logits.dataSync();
      const V = tokenizer.vocabSize;
      for (let t = 0; t < T; t++) {
        const row = Array.from(logits.subarray(t * V, (t + 1) * V));
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
        nll += lse - row[window[t + 1]];
        n += 1;
      }
      tf.dispose([out.logits, out.lastHiddenState]);
    }
    expect(got.tokens).toBe(n);
    expect(got.meanLoss).toBeCloseTo(nll / n, 4);
    expect(got.perplexity).toBeCloseTo(Math.exp(nll / n), 2);
    expect(evaluatedTargets(tokens, { seqLen: T, maxWindows }).length).toBe(n);
    dispose(m);
  });

  it("unigram baseline matches a hand computation", () => {
    // counts on train: 0 → 2, 1 → 1, 2 → 1, 3 → 0; N = 4, V = 4, so p = (c + 1) / 8.
    const r = unigramPerplexity(new Int32Array([0, 0, 1, 2]), new Int32Array([0, 3]), 4);
    // p(0) = 3/8, p(3) = 1/8: ppl = exp(−(ln 3/8 + ln 1/8) / 2) = √(64/3).
    expect(r.perplexity).toBeCloseTo(Math.sqrt(64 / 3), 10);
    expect(r.meanLoss).toBeCloseTo(-(Math.log(3 / 8) + Math.log(1 / 8)) / 2, 12);
    expect(r.tokens).toBe(2);
    expect(() => unigramPerplexity(new Int32Array([0, 4]), new Int32Array([0]), 4)).toThrow(/train token 1 = 4/);
  });
});

describe("trainLm", () => {
  let dir: string;
  let textPath: string;
  const options = (out: string, extra: Partial<LmTrainOptions> = {}): LmTrainOptions => ({
    text: textPath, valText: textPath, out, vocabSize: 300, templateCopies: 20,
    hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 64, maxPositions: 64, tieEmbeddings: true,
    steps: 6, batchSize: 2, seqLen: 12, gradAccum: 1, lr: 5e-3, weightDecay: 0, clipNorm: 1, seed: 3,
    checkpointEvery: 0, validateEvery: 3, evalWindows: 4, samplePrompt: "The keeper", sampleTokens: 5, resume: false,
    progress: false, handleSigint: false, log: () => {}, ...extra,
  });
  beforeAll(() => {
    dir = tempDir();
    textPath = join(dir, "text.txt");
    writeFileSync(textPath, TEXT);
  });

  it("trains tokenizer and LM, writes the HF folder and report.json; probe values join validations and the report", async () => {
    const out = join(dir, "run");
    const probed: number[] = [];
    const r = await trainLm(options(out, { reportOptions: { from: "test" }, probe: async (m) => (probed.push(m.parameterCount()), { metrics: { probe_value: 7 }, report: { probe: { ok: true } } }) }));
    expect(r.status).toBe("completed");
    expect(r.steps).toBe(6);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "loss.svg", "loss.csv", "report.json", "metrics.jsonl", "checkpoints/last.safetensors"]) expect(existsSync(join(out, f)), f).toBe(true);
    expect(probed).toHaveLength(3); // validations at steps 3 and 6, then the report
    const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
    expect(Object.keys(report).slice(-3)).toEqual(["sample", "probe", "options"]);
    expect(report.probe).toEqual({ ok: true });
    expect(report.options).toEqual({ from: "test" });
    expect(report.val.perplexity).toBeCloseTo(Math.exp(report.val.mean_loss), 6);
    expect(report.parameters).toBe(probed[0]);
    const validations = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.validation);
    expect(validations.map((v) => Object.keys(v.validation))).toEqual([0, 1].map(() => ["metric", "val_loss", "val_ppl", "probe_value"]));
    const saved = readSafetensors(join(out, "model.safetensors"));
    expect(saved.tensors["model.layers.0.mlp.up_proj.weight"].shape).toEqual([64, 32]); // HF [out, in]
    expect(saved.tensors["model.layers.0.mlp.up_proj.weight"].dtype).toBe("F16");
    expect(LlamaForCausalLM.fromPretrained(out).config.vocab_size).toBe(300);
  });

  it("a run stopped and resumed — also from a lm4lv-train/1 checkpoint (<module>.kernel [in, out]) — ends with the same bits", async () => {
    const straight = join(dir, "straight");
    await trainLm(options(straight));
    const stopAt3 = { onStep: (e: { step: number }, t: Trainer<TokenBatch>) => (e.step === 3 ? t.stop() : undefined) };
    for (const legacy of [false, true]) {
      const out = join(dir, legacy ? "legacy" : "resumed");
      const first = await trainLm(options(out, stopAt3));
      expect([first.status, first.steps]).toEqual(["stopped", 3]);
      expect(existsSync(join(out, "model.safetensors"))).toBe(false);
      if (legacy) {
        // the checkpoint as the code before HF-layout parameters wrote it
        const path = join(out, "checkpoints", "last.safetensors");
        const { tensors, metadata } = readSafetensors(path);
        const old: Record<string, TensorToWrite> = {};
        for (const [name, t] of Object.entries(tensors)) {
          const data = t.data as Float32Array;
          const linear = t.shape.length === 2 && !name.endsWith("embed_tokens.weight");
          old[linear ? name.replace(/\.weight$/, ".kernel") : name] = linear ? { shape: [t.shape[1], t.shape[0]], data: transpose2d(data, t.shape[0], t.shape[1]) } : { shape: t.shape, data };
        }
        expect(Object.keys(old).filter((n) => n.endsWith(".kernel"))).toHaveLength(3 * 14); // 2 layers × 7 Linear weights, with two Adam moments each
        writeSafetensors(path, old, { ...metadata, format: "lm4lv-train/1" });
      }
      const second = await trainLm(options(out, { resume: true }));
      expect(second.status).toBe("completed");
      expect(readFileSync(join(out, "model.safetensors")).equals(readFileSync(join(straight, "model.safetensors"))), legacy ? "legacy" : "resumed").toBe(true);
    }
  });
});

describe("LM_TRAINING_OPTIONS (one default per setting)", () => {
  it("fills the defaults pnpm train lm shows, and rejects bad settings by name before reading anything", async () => {
    const { LM_TRAINING_OPTIONS } = await import("./training.js");
    expect(LM_TRAINING_OPTIONS.parse({ text: "t", valText: "v", out: "o" })).toMatchObject({ vocabSize: 4096, templateCopies: 200, hiddenSize: 512, numLayers: 3, numHeads: 16, numKvHeads: 16, intermediateSize: 384, tieEmbeddings: true, steps: 200, seqLen: 128, lr: 2e-3, clipNorm: 1, checkpointEvery: 25 });
    await expect(trainLm({ text: "/nonexistent", valText: "/nonexistent", out: "/nonexistent/o", numHeads: 0, lr: -1 })).rejects.toThrow(
      "trainLm: numHeads: expected a positive integer, got 0; trainLm: lr: expected a positive number, got -1",
    );
  });
});
