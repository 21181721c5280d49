import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend, readSafetensors } from "@lm4lv/core";
import type { TrainRng } from "@lm4lv/data";
import { ShuffledBatches } from "./data.js";
import { loadCheckpoint } from "./checkpoint.js";
import { parseLossCsv } from "./loss-csv.js";
import { NonFiniteLossError, runTraining, Trainer } from "./trainer.js";
import type { TrainOptions } from "./trainer.js";

/** 64 points of y = 2x − 1 (x in [-1, 1]). */
const XS = Array.from({ length: 64 }, (_, i) => -1 + (2 * i) / 63);
const YS = XS.map((x) => 2 * x - 1);

type Batch = { x: number[]; y: number[]; poison?: boolean };

/** The two trained variables, always initialised the same way. */
function makeVars() {
  return { w: tf.variable(tf.scalar(0.1), true), b: tf.variable(tf.scalar(0.0), true) };
}

/** Mean squared error of w·x + b, with the mean absolute error as a second named part. */
function makeLoss(vars: { w: tf.Variable; b: tf.Variable }) {
  return (batch: Batch) => {
    const pred = tf.add(tf.mul(tf.tensor1d(batch.x), vars.w), vars.b); // (N,)
    const diff = tf.sub(pred, tf.tensor1d(batch.y));
    let mse = tf.mean(tf.square(diff)) as tf.Scalar;
    if (batch.poison) mse = tf.mul(mse, NaN) as tf.Scalar;
    return { loss: mse, parts: { mse, mae: tf.mean(tf.abs(diff)) as tf.Scalar } };
  };
}

/** Shuffled batches of 8 with label noise drawn from the trainer's RNG (so its state matters). */
function shuffledSource(): ShuffledBatches<Batch> {
  return new ShuffledBatches<Batch>({
    size: XS.length,
    batchSize: 8,
    seed: 3,
    load: (idx: number[], rng: TrainRng) => ({ x: idx.map((i) => XS[i]), y: idx.map((i) => YS[i] + 0.01 * rng.normal()) }),
  });
}

function dump(vars: Record<string, tf.Variable>): Record<string, number[]> {
  return Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, Array.from(v.dataSync())]));
}

class Collect extends Writable {
  text = "";
  constructor(readonly isTTY: boolean) {
    super();
  }
  _write(chunk: Buffer, _enc: string, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
}

describe("Trainer", () => {
  let root: string;
  beforeAll(async () => {
    await initBackend("cpu");
    root = mkdtempSync(join(tmpdir(), "lm4lv-train-"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const base = (vars: ReturnType<typeof makeVars>, extra: Partial<TrainOptions<Batch>> = {}): TrainOptions<Batch> => ({
    variables: vars,
    loss: makeLoss(vars),
    data: shuffledSource(),
    totalSteps: 40,
    seed: 11,
    optimizer: { lr: 0.1 },
    accumulate: 2,
    progress: false,
    handleSigint: false,
    config: { task: "linreg" },
    ...extra,
  });

  it("decreases the loss of a linear regression and finds the line", async () => {
    const vars = makeVars();
    const res = await runTraining(base(vars, { totalSteps: 150, schedule: { kind: "constant" }, optimizer: { lr: 0.05 } }));
    expect(res.status).toBe("completed");
    expect(res.history).toHaveLength(150);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const first = mean(res.history.slice(0, 10).map((h) => h.loss));
    const last = mean(res.history.slice(-10).map((h) => h.loss));
    expect(last).toBeLessThan(first / 20);
    expect(res.history[0].parts.mae).toBeGreaterThan(0);
    expect(vars.w.dataSync()[0]).toBeCloseTo(2, 1);
    expect(vars.b.dataSync()[0]).toBeCloseTo(-1, 1);
  });

  it("stopped after N steps and resumed ends with bit-identical weights (iterator + RNG state)", async () => {
    const full = makeVars();
    const dirA = join(root, "uninterrupted");
    const a = await runTraining(base(full, { checkpointDir: dirA }));
    expect(a.status).toBe("completed");

    const dirB = join(root, "interrupted");
    const part = makeVars();
    const b = await runTraining(base(part, { checkpointDir: dirB, onStep: (e, t) => { if (e.step === 13) t.stop(); } }));
    expect(b.status).toBe("stopped");
    expect(b.step).toBe(13);
    expect(loadCheckpoint(join(dirB, "last.safetensors")).state.step).toBe(13);
    expect(dump(part)).not.toEqual(dump(full));

    // A fresh process would rebuild everything: new variables (any init), new data source.
    const resumed = { w: tf.variable(tf.scalar(5), true), b: tf.variable(tf.scalar(5), true) };
    const c = await runTraining(base(resumed, { checkpointDir: dirB, resume: true }));
    expect(c.status).toBe("completed");
    expect(c.step).toBe(40);
    expect(c.history.map((h) => h.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(c.history.map((h) => h.loss)).toEqual(a.history.map((h) => h.loss));
    expect(dump(resumed)).toEqual(dump(full));
    // The saved files are the same bits too.
    const wa = readSafetensors(join(dirA, "last.safetensors")).tensors;
    const wc = readSafetensors(join(dirB, "last.safetensors")).tensors;
    for (const n of Object.keys(wa)) expect(Buffer.from(wc[n].data.buffer).equals(Buffer.from(wa[n].data.buffer))).toBe(true);
  });

  it("resumes a batch-function source (RNG state only) bit-identically, stopping through an AbortSignal", async () => {
    const fn = (step: number, rng: TrainRng, micro: number): Batch => {
      const x = Array.from({ length: 6 }, () => 2 * rng.uniform() - 1);
      return { x, y: x.map((v) => 2 * v - 1 + 0.001 * (step + micro)) };
    };
    const full = makeVars();
    await runTraining(base(full, { data: fn, totalSteps: 25 }));

    const dir = join(root, "abort");
    const ac = new AbortController();
    const part = makeVars();
    const b = await runTraining(base(part, { data: fn, totalSteps: 25, checkpointDir: dir, signal: ac.signal, onStep: (e) => { if (e.step === 9) ac.abort(); } }));
    expect(b.step).toBe(9);
    const resumed = makeVars();
    await runTraining(base(resumed, { data: fn, totalSteps: 25, checkpointDir: dir, resume: true }));
    expect(dump(resumed)).toEqual(dump(full));
  });

  it("stops on a NaN loss naming the step, and leaves the last checkpoint's bytes untouched", async () => {
    const dir = join(root, "nan");
    const fn = (step: number): Batch => ({ x: XS.slice(0, 8), y: YS.slice(0, 8), poison: step === 8 });
    const vars = makeVars();
    const snapshots: Buffer[] = [];
    const opts = base(vars, {
      data: fn,
      accumulate: 1,
      checkpointDir: dir,
      checkpointEvery: 5,
      // onStep runs before the periodic save of its step: the step-5 checkpoint is read at step 6.
      onStep: (e) => { if (e.step === 6) snapshots.push(readFileSync(join(dir, "last.safetensors"))); },
    });
    const err = await runTraining(opts).catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect((err as NonFiniteLossError).step).toBe(8);
    expect((err as Error).message).toMatch(/loss is NaN at step 8/);
    expect(snapshots).toHaveLength(1);
    expect(readFileSync(join(dir, "last.safetensors")).equals(snapshots[0])).toBe(true);
    expect(loadCheckpoint(join(dir, "last.safetensors")).state.step).toBe(5);
    expect(readdirSync(dir)).toEqual(["last.safetensors"]);
  });

  it("validates, keeps the best checkpoint, writes a loss plot, and leaves no temporary files", async () => {
    const dir = join(root, "best");
    const vars = makeVars();
    const metrics = [0.5, 0.2, 0.3, 0.4];
    let calls = 0;
    const res = await runTraining(base(vars, {
      totalSteps: 20,
      checkpointDir: dir,
      checkpointEvery: 3,
      validateEvery: 5,
      keepBest: true,
      validate: () => ({ metric: metrics[calls++], psnr: 30 + calls }),
      lossPlot: join(dir, "loss.png"),
    }));
    expect(res.validation.map((v) => v.step)).toEqual([5, 10, 15, 20]);
    expect(res.bestMetric).toBe(0.2);
    expect(res.bestCheckpoint).toBe(join(dir, "best.safetensors"));
    const best = loadCheckpoint(join(dir, "best.safetensors"));
    expect(best.state.step).toBe(10);
    expect(best.config).toEqual({ task: "linreg" });
    expect(best.history.validation.map((v) => v.values.psnr)).toEqual([31, 32]);
    expect(loadCheckpoint(join(dir, "last.safetensors")).history.train).toHaveLength(20);
    // lossPlot ".../loss.png" writes loss.svg and loss.csv instead.
    expect(readdirSync(dir).sort()).toEqual(["best.safetensors", "last.safetensors", "loss.csv", "loss.svg"]);
    expect(readFileSync(join(dir, "loss.svg"), "utf8")).toMatch(/^<\?xml[^]*<svg [^]*<\/svg>\n$/);
    const csv = parseLossCsv(readFileSync(join(dir, "loss.csv"), "utf8"));
    expect(csv.history).toEqual(res.history);
    expect(csv.validation).toEqual(res.validation);
  });

  it("SIGINT finishes the current step, saves and returns; the handler is removed afterwards", async () => {
    const dir = join(root, "sigint");
    const before = process.listenerCount("SIGINT");
    const out = new Collect(false);
    const res = await runTraining(base(makeVars(), {
      checkpointDir: dir,
      handleSigint: true,
      progress: { stream: out, tty: false },
      onStep: (e) => { if (e.step === 4) process.emit("SIGINT"); },
    }));
    expect(res.status).toBe("stopped");
    expect(res.step).toBe(4);
    expect(loadCheckpoint(join(dir, "last.safetensors")).state.step).toBe(4);
    expect(out.text).toMatch(/interrupt: finishing the current step/);
    expect(out.text).toMatch(/stopped at step 4; saved .*last.safetensors/);
    expect(process.listenerCount("SIGINT")).toBe(before);
  });

  it("trains only the given variables", async () => {
    const vars = makeVars();
    const scale = tf.variable(tf.scalar(1.5), true);
    const before = scale.dataSync()[0];
    const loss = (b: Batch) => tf.mean(tf.square(tf.sub(tf.mul(tf.add(tf.mul(tf.tensor1d(b.x), vars.w), vars.b), scale), tf.tensor1d(b.y)))) as tf.Scalar;
    await runTraining(base(vars, { loss, totalSteps: 5 }));
    expect(scale.dataSync()[0]).toBe(before);
    expect(vars.w.dataSync()[0]).not.toBe(0.1);
  });

  it("reports a checkpoint that does not match the variables by name and shape", async () => {
    const dir = join(root, "mismatch");
    await runTraining(base(makeVars(), { totalSteps: 3, checkpointDir: dir }));
    const other = { w: tf.variable(tf.zeros([2]), true), b: tf.variable(tf.scalar(0), true) };
    await expect(runTraining(base(other as never, { checkpointDir: dir, resume: true }))).rejects.toThrow(/tensor "w" has shape \[\], variable has \[2\]/);
    const renamed = { w: tf.variable(tf.scalar(0), true), bias: tf.variable(tf.scalar(0), true) };
    await expect(runTraining(base(renamed as never, { checkpointDir: dir, resume: true }))).rejects.toThrow(/missing: bias; unexpected: b/);
  });

  it("shows plain progress lines without a TTY and a redrawn bar with one", async () => {
    const plain = new Collect(false);
    await runTraining(base(makeVars(), { totalSteps: 6, batchSize: 8, progress: { stream: plain, tty: false, every: 2 } }));
    const lines = plain.text.trim().split("\n");
    expect(lines.filter((l) => l.startsWith("step")).map((l) => l.split(" loss")[0])).toEqual(["step 1/6", "step 2/6", "step 4/6", "step 6/6"]);
    expect(lines[0]).toMatch(/loss [\d.e-]+ mse [\d.e-]+ mae [\d.e-]+ lr [\d.e-]+ [\d.e+-]+ items\/s eta /);
    expect(plain.text).not.toContain("\r");

    const tty = new Collect(true);
    await runTraining(base(makeVars(), { totalSteps: 6, progress: { stream: tty, tty: true } }));
    expect(tty.text.split("\r").length).toBeGreaterThan(6);
    expect(tty.text).toContain("[####################] step 6/6");
    expect(tty.text).toContain("steps/s");
  });

  it("an external gradient engine (host Adam, clipping, accumulation) follows the tfjs path; its resume is exact; metrics.jsonl", async () => {
    // analytic gradients of the same MSE, computed in float64 on the host
    const engine = (vars: ReturnType<typeof makeVars>) => (batch: Batch) => {
      const [w, b] = [vars.w.dataSync()[0], vars.b.dataSync()[0]];
      let loss = 0, gw = 0, gb = 0;
      batch.x.forEach((x, i) => {
        const d = w * x + b - batch.y[i];
        loss += d * d;
        gw += 2 * d * x;
        gb += 2 * d;
      });
      const n = batch.x.length;
      return { loss: loss / n, parts: { mse: loss / n }, grads: { w: Float32Array.of(gw / n), b: Float32Array.of(gb / n) } };
    };
    const opts = { clipNorm: 0.5, optimizer: { lr: 0.1, weightDecay: 0.01 } };
    const a = makeVars();
    const ra = await runTraining(base(a, opts));
    const e = makeVars();
    const re = await runTraining({ ...base(e, opts), loss: undefined, gradients: engine(e), metricsFile: join(root, "ext", "metrics.jsonl") });
    re.history.forEach((h, i) => {
      expect(h.loss).toBeCloseTo(ra.history[i].loss, 5);
      expect(h.gradNorm).toBeCloseTo(ra.history[i].gradNorm, 4);
    });
    expect(e.w.dataSync()[0]).toBeCloseTo(a.w.dataSync()[0], 5);
    expect(e.b.dataSync()[0]).toBeCloseTo(a.b.dataSync()[0], 5);
    const lines = readFileSync(join(root, "ext", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(Object.keys(lines[0]).sort()).toEqual(["gradNorm", "loss", "lr", "ms", "mse", "step"]);

    // stopped at 15, resumed by a fresh trainer: the same bits as the uninterrupted run
    const dir = join(root, "ext-resume");
    const s1 = makeVars();
    const ctl = new AbortController();
    await runTraining({ ...base(s1, opts), loss: undefined, gradients: engine(s1), checkpointDir: dir, metricsFile: join(dir, "metrics.jsonl"), signal: ctl.signal, onStep: (h) => { if (h.step === 15) ctl.abort(); } });
    const s2 = makeVars();
    await runTraining({ ...base(s2, opts), loss: undefined, gradients: engine(s2), checkpointDir: dir, metricsFile: join(dir, "metrics.jsonl"), resume: true });
    expect(dump(s2)).toEqual(dump(e));
    expect(readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").length).toBe(40);
    expect(() => new Trainer({ ...base(makeVars()), gradients: engine(makeVars()) })).toThrow(/exactly one of loss/);
  });

  it("a Trainer can be driven step by step", async () => {
    const vars = makeVars();
    const t = new Trainer(base(vars, { totalSteps: 30 }));
    const e1 = await t.trainStep();
    expect(e1.step).toBe(1);
    expect(e1.lr).toBeCloseTo(t.learningRate(1), 15);
    expect(e1.gradNorm).toBeGreaterThan(0);
    expect(t.optimizer.step).toBe(1);
    // No tensors leak from a step (gradients, clipped copies, loss parts are all freed).
    await t.trainStep();
    const live = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await t.trainStep();
    expect(tf.memory().numTensors).toBe(live);
    t.dispose();
    expect(existsSync(join(root, "nothing"))).toBe(false);
  });
});
