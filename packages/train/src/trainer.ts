/**
 * The training loop: for each step, draw k micro-batches, average their
 * gradients over the given variables, clip by global norm, apply Adam with the
 * scheduled learning rate; validate and checkpoint periodically; stop cleanly
 * on stop()/AbortSignal/SIGINT (finish the step, save, return); refuse to go
 * on after a non-finite loss (the last good checkpoint is left as it was).
 *
 * Resume is exact: weights, Adam moments, step, the trainer RNG and the data
 * iterator's position are all in the checkpoint, so a run stopped at step N and
 * resumed ends with the same bits as one that was never stopped.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic } from "@lm4lv/core";
import { TrainRng } from "@lm4lv/data";
import { accumulateGradients, clipByGlobalNorm, globalNorm } from "./grads.js";
import type { LossFn } from "./grads.js";
import { Adam } from "./optimizer.js";
import type { AdamOptions, NamedVariables } from "./optimizer.js";
import { makeSchedule } from "./schedule.js";
import type { ScheduleOptions } from "./schedule.js";
import { isDataIterator } from "./data.js";
import type { DataSource, JsonValue } from "./data.js";
import { loadCheckpoint, restoreVariables, saveCheckpoint, snapshotVariables, upgradeCheckpoint } from "./checkpoint.js";
import type { HistoryEntry, LegacyTensorMap, TrainState, ValidationEntry } from "./checkpoint.js";
import { Progress } from "./progress.js";
import type { ProgressOptions } from "./progress.js";
import { writeLossPlot } from "./loss-plot.js";

/** What a validation callback returns: a number (lower is better) or named values with a `metric`. */
export type ValidationResult = number | ({ metric: number } & Record<string, number>);

/** Loss and gradients of one micro-batch computed outside tfjs (e.g. by ONNX Runtime). */
export interface ExternalGradients {
  loss: number;
  parts?: Record<string, number>;
  /** By variable name, each with the variable's size (row-major, the variable's layout). */
  grads: Record<string, Float32Array>;
}

/**
 * A gradient engine: loss and gradients of one micro-batch at the variables' current values.
 * The trainer averages them over micro-batches, clips and applies Adam exactly as for `loss`.
 */
export type GradientFn<B> = (batch: B) => ExternalGradients | Promise<ExternalGradients>;

export interface TrainOptions<B> {
  /** The variables to train, by name (the names used in checkpoints). Only these are updated. */
  variables: NamedVariables;
  /** Loss over one (micro-)batch; use a mean over the batch so accumulation averages correctly. */
  loss?: LossFn<B>;
  /** Instead of `loss`: an engine that returns the loss and the gradients itself. */
  gradients?: GradientFn<B>;
  /**
   * Append one JSON line per step here ({step, loss, ...parts, lr, gradNorm, ms}) and one per
   * validation ({step, validation: {...}}). On resume, lines past the restored step are dropped.
   */
  metricsFile?: string;
  data: DataSource<B>;
  totalSteps: number;
  /** Seed of the trainer RNG passed to the data source. Default 0. */
  seed?: number;
  /** Adam options; `lr` is the peak rate of the schedule. */
  optimizer?: AdamOptions;
  /** Schedule (default warmup-linear at optimizer.lr), or a function of the 1-based step. */
  schedule?: Omit<ScheduleOptions, "totalSteps" | "lr"> | ((step: number) => number);
  /** Max global gradient norm; null disables clipping. Default 1.0. */
  clipNorm?: number | null;
  /** Micro-batches per step (gradient accumulation). Default 1. */
  accumulate?: number;
  /** Items per micro-batch, for the items/s display. */
  batchSize?: number;
  /** Folder for `last.safetensors` (and `best.safetensors`); no checkpoints when absent. */
  checkpointDir?: string;
  /** Save `last` every n steps (it is also saved at the end and on stop). 0: only then. */
  checkpointEvery?: number;
  /** Resume from `<checkpointDir>/last.safetensors` when it exists (true), or from this file. */
  resume?: boolean | string;
  /**
   * For checkpoints of a legacy format (see checkpoint.ts): maps a saved variable (and, alike, its
   * Adam moments) to today's name and layout. Default: tensors are used as saved.
   */
  upgradeLegacy?: LegacyTensorMap;
  validate?: (step: number) => ValidationResult | Promise<ValidationResult>;
  /** Run validate every n steps and after the last step. Default 0 (only after the last step). */
  validateEvery?: number;
  /** Save `best.safetensors` when the validation metric improves (lower is better). */
  keepBest?: boolean;
  /** Free-form run configuration stored in checkpoints (e.g. the model config and hyper-parameters). */
  config?: JsonValue;
  /** Progress display; false for none. Default: on stderr. */
  progress?: boolean | ProgressOptions;
  /**
   * Whenever `last` is saved, write the loss chart and the history here: `<base>.svg` and `<base>.csv`,
   * base being this path without its extension (".../loss.png" or ".../loss.svg" → loss.svg + loss.csv).
   */
  lossPlot?: string;
  /** Stop (after the current step, with a save) when this aborts. */
  signal?: AbortSignal;
  /** Install a SIGINT handler during run(): first Ctrl-C stops cleanly, a second exits. Default true. */
  handleSigint?: boolean;
  /** Called after every step. */
  onStep?: (entry: HistoryEntry, trainer: Trainer<B>) => void | Promise<void>;
}

export interface TrainResult {
  status: "completed" | "stopped";
  /** Completed steps. */
  step: number;
  history: HistoryEntry[];
  validation: ValidationEntry[];
  lastCheckpoint?: string;
  bestCheckpoint?: string;
  bestMetric: number | null;
}

/** Thrown when the loss (or the gradient norm) is NaN or infinite; nothing is saved at that step. */
export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly loss: number, readonly parts: Record<string, number>, what = "loss") {
    const p = Object.entries(parts).map(([n, v]) => `${n}=${v}`).join(", ");
    super(`training stopped: ${what} is ${what === "loss" ? loss : "not finite"} at step ${step}${p ? ` (${p})` : ""}; the last checkpoint was left untouched`);
    this.name = "NonFiniteLossError";
  }
}

export class Trainer<B> {
  readonly optimizer: Adam;
  readonly rng: TrainRng;
  /** Completed steps. */
  step = 0;
  history: HistoryEntry[] = [];
  validation: ValidationEntry[] = [];
  bestMetric: number | null = null;
  private readonly lrAt: (step: number) => number;
  private readonly progress: Progress | null;
  private stopRequested = false;
  private resumedFrom: string | null = null;

  constructor(readonly options: TrainOptions<B>) {
    const o = options;
    if (!Number.isInteger(o.totalSteps) || o.totalSteps < 1) throw new RangeError(`totalSteps must be a positive integer, got ${o.totalSteps}`);
    const k = o.accumulate ?? 1;
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`accumulate must be a positive integer, got ${k}`);
    if (o.keepBest && !o.validate) throw new Error("keepBest needs a validate callback");
    if (!o.loss === !o.gradients) throw new Error("give exactly one of loss (tfjs autodiff) and gradients (an external engine)");
    if ((o.keepBest || o.checkpointEvery || o.resume) && !o.checkpointDir && typeof o.resume !== "string") throw new Error("checkpointEvery/keepBest/resume need checkpointDir");
    this.optimizer = new Adam(o.variables, o.optimizer);
    this.rng = new TrainRng(o.seed ?? 0);
    const sched = o.schedule;
    this.lrAt = typeof sched === "function" ? sched : makeSchedule({ ...(sched ?? {}), lr: this.optimizer.options.lr, totalSteps: o.totalSteps });
    const p = o.progress ?? true;
    this.progress = p === false ? null : new Progress(p === true ? {} : p);
  }

  /** Path of the rolling checkpoint. */
  get lastPath(): string | undefined {
    return this.options.checkpointDir ? join(this.options.checkpointDir, "last.safetensors") : undefined;
  }

  get bestPath(): string | undefined {
    return this.options.checkpointDir ? join(this.options.checkpointDir, "best.safetensors") : undefined;
  }

  /** Learning rate of a 1-based step. */
  learningRate(step: number): number {
    return this.lrAt(step);
  }

  /** Requests a clean stop: the current step finishes, `last` is saved, run() returns "stopped". */
  stop(): void {
    this.stopRequested = true;
  }

  /** Loads a checkpoint into the variables, optimizer, RNG, data iterator and history. */
  restore(path: string): void {
    const loaded = loadCheckpoint(path);
    const c = this.options.upgradeLegacy ? upgradeCheckpoint(loaded, this.options.upgradeLegacy) : loaded;
    restoreVariables(path, this.options.variables, c.variables);
    this.optimizer.importState({ step: c.state.optimizerStep, tensors: c.optimizer });
    this.rng.setState(c.state.rng);
    if (isDataIterator(this.options.data)) {
      if (c.state.data === null || c.state.data === undefined) throw new Error(`${path}: checkpoint has no data iterator state`);
      this.options.data.setState(c.state.data);
    }
    this.step = c.state.step;
    this.bestMetric = c.state.bestMetric;
    this.history = c.history.train;
    this.validation = c.history.validation;
    this.resumedFrom = path;
    const now = JSON.stringify(this.options.config ?? null);
    if (JSON.stringify(c.config) !== now) this.progress?.log(`warning: ${path} was written with a different config`);
  }

  /** Writes a checkpoint of the current state (atomically). */
  save(path: string): void {
    const state: TrainState = {
      step: this.step,
      optimizerStep: this.optimizer.step,
      rng: this.rng.getState(),
      data: isDataIterator(this.options.data) ? this.options.data.getState() : null,
      bestMetric: this.bestMetric,
    };
    saveCheckpoint(path, {
      state,
      variables: snapshotVariables(this.options.variables),
      optimizer: this.optimizer.exportState().tensors,
      config: this.options.config ?? null,
      history: { train: this.history, validation: this.validation },
    });
  }

  private async saveLast(): Promise<void> {
    const path = this.lastPath;
    if (!path) return;
    this.save(path);
    if (this.options.lossPlot && this.history.length > 1) writeLossPlot(this.options.lossPlot, this.history, this.validation);
  }

  private async nextBatch(step: number, micro: number): Promise<B> {
    const src = this.options.data;
    return isDataIterator(src) ? await src.next(this.rng) : await src(step, this.rng, micro);
  }

  /** One optimisation step (step number this.step + 1). */
  async trainStep(): Promise<HistoryEntry> {
    const o = this.options;
    const s = this.step + 1;
    const lr = this.lrAt(s);
    const t0 = performance.now();
    const micro: B[] = [];
    for (let i = 0; i < (o.accumulate ?? 1); i++) micro.push(await this.nextBatch(s, i));
    if (o.gradients) return this.finishHostStep(s, lr, t0, await this.externalGradients(o.gradients, micro));
    const res = accumulateGradients(o.loss!, o.variables, micro);
    let grads = res.grads;
    const dispose = () => Object.values(grads).forEach((g) => g?.dispose());
    if (!Number.isFinite(res.loss)) {
      dispose();
      throw new NonFiniteLossError(s, res.loss, res.parts);
    }
    let gradNorm: number;
    if (o.clipNorm === null) {
      gradNorm = globalNorm(grads);
    } else {
      const clipped = clipByGlobalNorm(grads, o.clipNorm ?? 1.0);
      grads = clipped.grads;
      gradNorm = clipped.norm;
    }
    if (!Number.isFinite(gradNorm)) {
      dispose();
      throw new NonFiniteLossError(s, res.loss, res.parts, "gradient norm");
    }
    this.optimizer.applyGradients(grads as Record<string, tf.Tensor | null>, lr);
    dispose();
    this.step = s;
    const entry: HistoryEntry = { step: s, loss: res.loss, parts: res.parts, lr, gradNorm };
    this.history.push(entry);
    this.writeMetrics({ step: s, loss: res.loss, ...res.parts, lr, gradNorm, ms: Math.round((performance.now() - t0) * 10) / 10 });
    return entry;
  }

  /** Mean loss and gradients of the micro-batches from an external engine (host arrays). */
  private async externalGradients(fn: GradientFn<B>, micro: B[]): Promise<{ loss: number; parts: Record<string, number>; grads: Record<string, Float32Array> }> {
    const vars = this.options.variables;
    const sums: Record<string, Float32Array> = {};
    const partSums: Record<string, number> = {};
    let lossSum = 0;
    for (const [i, batch] of micro.entries()) {
      const r = await fn(batch);
      lossSum += r.loss;
      for (const [n, v] of Object.entries(r.parts ?? {})) partSums[n] = (partSums[n] ?? 0) + v;
      for (const [name, g] of Object.entries(r.grads)) {
        const v = vars[name];
        if (!v) throw new Error(`gradient engine: gradient for unknown variable "${name}" (micro-batch ${i})`);
        if (g.length !== v.size) throw new Error(`gradient engine: gradient for "${name}" has ${g.length} values, the variable [${v.shape}] has ${v.size}`);
        const sum = sums[name];
        if (!sum) sums[name] = micro.length > 1 ? new Float32Array(g) : g;
        else for (let k = 0; k < g.length; k++) sum[k] += g[k];
      }
    }
    const k = micro.length;
    if (k > 1) for (const sum of Object.values(sums)) for (let j = 0; j < sum.length; j++) sum[j] /= k;
    return { loss: lossSum / k, parts: Object.fromEntries(Object.entries(partSums).map(([n, v]) => [n, v / k])), grads: sums };
  }

  /** Clipping and Adam on the host for an external engine's gradients (same rules as the tfjs path). */
  private finishHostStep(s: number, lr: number, t0: number, res: { loss: number; parts: Record<string, number>; grads: Record<string, Float32Array> }): HistoryEntry {
    const o = this.options;
    if (!Number.isFinite(res.loss)) throw new NonFiniteLossError(s, res.loss, res.parts);
    let sq = 0;
    for (const g of Object.values(res.grads)) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
    const gradNorm = Math.sqrt(sq);
    if (!Number.isFinite(gradNorm)) throw new NonFiniteLossError(s, res.loss, res.parts, "gradient norm");
    if (o.clipNorm !== null) {
      const maxNorm = o.clipNorm ?? 1.0;
      if (!(maxNorm > 0)) throw new RangeError(`clipNorm must be > 0, got ${maxNorm}`);
      const coef = maxNorm / (gradNorm + 1e-6); // as torch.nn.utils.clip_grad_norm_
      if (coef < 1) for (const g of Object.values(res.grads)) for (let i = 0; i < g.length; i++) g[i] *= coef;
    }
    this.optimizer.applyHostGradients(res.grads, lr);
    this.step = s;
    const entry: HistoryEntry = { step: s, loss: res.loss, parts: res.parts, lr, gradNorm };
    this.history.push(entry);
    this.writeMetrics({ step: s, loss: res.loss, ...res.parts, lr, gradNorm, ms: Math.round((performance.now() - t0) * 10) / 10 });
    return entry;
  }

  private writeMetrics(line: Record<string, unknown>): void {
    const file = this.options.metricsFile;
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true });
    appendFileSync(file, JSON.stringify(line) + "\n");
  }

  /** Drops metrics lines written after `step` (a run resumed from an earlier checkpoint). */
  private truncateMetrics(step: number): void {
    const file = this.options.metricsFile;
    if (!file || !existsSync(file)) return;
    const kept = readFileSync(file, "utf8").split("\n").filter((l) => {
      if (!l.trim()) return false;
      try {
        return (JSON.parse(l) as { step?: number }).step! <= step;
      } catch {
        return false;
      }
    });
    writeFileAtomic(file, kept.map((l) => l + "\n").join(""));
  }

  private async runValidation(): Promise<void> {
    const o = this.options;
    if (!o.validate) return;
    const r = await o.validate(this.step);
    const metric = typeof r === "number" ? r : r.metric;
    const values = typeof r === "number" ? { metric: r } : { ...r };
    this.validation.push({ step: this.step, metric, values });
    this.writeMetrics({ step: this.step, validation: values });
    const text = Object.entries(values).map(([n, v]) => `${n} ${v.toPrecision(4)}`).join(" ");
    let improved = false;
    if (Number.isFinite(metric) && (this.bestMetric === null || metric < this.bestMetric)) {
      this.bestMetric = metric;
      improved = true;
      if (o.keepBest && this.bestPath) this.save(this.bestPath);
    }
    this.progress?.log(`validation at step ${this.step}: ${text}${improved && o.keepBest ? " (best, saved)" : ""}`);
  }

  /** Runs to totalSteps (or until stopped). Throws NonFiniteLossError on a NaN/inf loss. */
  async run(): Promise<TrainResult> {
    const o = this.options;
    if (o.checkpointDir) mkdirSync(o.checkpointDir, { recursive: true });
    const resumePath = typeof o.resume === "string" ? o.resume : o.resume ? this.lastPath : undefined;
    if (resumePath && this.resumedFrom !== resumePath) {
      if (typeof o.resume === "string" && !existsSync(resumePath)) throw new Error(`resume: ${resumePath} does not exist`);
      if (existsSync(resumePath)) {
        this.restore(resumePath);
        this.truncateMetrics(this.step);
        this.progress?.log(`resumed from ${resumePath} at step ${this.step}`);
      }
    }

    this.stopRequested = false;
    const onAbort = () => this.stop();
    o.signal?.addEventListener("abort", onAbort);
    if (o.signal?.aborted) this.stop();
    let interrupts = 0;
    const onSigint = () => {
      interrupts += 1;
      if (interrupts > 1) process.exit(130);
      this.progress?.log("interrupt: finishing the current step, then saving (Ctrl-C again to quit now)");
      this.stop();
    };
    if (o.handleSigint ?? true) process.on("SIGINT", onSigint);

    if (!resumePath || this.step === 0) this.truncateMetrics(this.step);
    this.progress?.start(this.step);
    try {
      while (this.step < o.totalSteps && !this.stopRequested) {
        const entry = await this.trainStep();
        this.progress?.update({ step: entry.step, total: o.totalSteps, loss: entry.loss, parts: entry.parts, lr: entry.lr, itemsPerStep: o.batchSize ? o.batchSize * (o.accumulate ?? 1) : undefined });
        await o.onStep?.(entry, this);
        const last = this.step === o.totalSteps;
        if (o.validate && (last || (o.validateEvery && this.step % o.validateEvery === 0))) await this.runValidation();
        if (!last && o.checkpointEvery && this.step % o.checkpointEvery === 0) await this.saveLast();
        // Let signal handlers and timers run between steps.
        await new Promise((r) => setImmediate(r));
      }
      await this.saveLast();
    } finally {
      this.progress?.finish();
      o.signal?.removeEventListener("abort", onAbort);
      if (o.handleSigint ?? true) process.off("SIGINT", onSigint);
    }
    const stopped = this.step < o.totalSteps;
    if (stopped) this.progress?.log(`stopped at step ${this.step}${this.lastPath ? `; saved ${this.lastPath}` : ""}`);
    return {
      status: stopped ? "stopped" : "completed",
      step: this.step,
      history: this.history,
      validation: this.validation,
      lastCheckpoint: this.lastPath,
      bestCheckpoint: o.keepBest && this.bestPath && existsSync(this.bestPath) ? this.bestPath : undefined,
      bestMetric: this.bestMetric,
    };
  }

  /** Frees the optimizer state (the trained variables belong to the caller). */
  dispose(): void {
    this.optimizer.dispose();
  }
}

/** Builds a Trainer, runs it, frees the optimizer state, returns the result. */
export async function runTraining<B>(options: TrainOptions<B>): Promise<TrainResult> {
  const trainer = new Trainer(options);
  try {
    return await trainer.run();
  } finally {
    trainer.dispose();
  }
}
