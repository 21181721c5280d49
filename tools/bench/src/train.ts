/**
 * pnpm bench train — one optimiser step of each trainer on the embedded default's shapes, side by
 * side in one run: ONNX Runtime (reverse-mode graphs of @lm4lv/onnx), tfjs-wasm (tfjs autodiff),
 * and PyTorch CPU at the same shapes (tools/bench/py/train_bench.py, Debian python3-torch with
 * OpenBLAS). Each step is the whole trainer step (data in memory, gradients, clipping, Adam).
 * ORT's achieved GFLOP/s (MatMul FLOPs of the graph from its static shapes) is shown for the
 * forward+backward graph and for the forward graph alone, and peak RSS of a step in a child
 * process for the embedded default and a ~130M Llama. The embedded default is mae-tiny + lm-wide
 * (EMBEDDED_LM), the LM every shipped LM4LV task names; tools/bench/py/train_bench.py builds the same shapes.
 */
import * as tf from "@tensorflow/tfjs";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend, readImage, type RgbImage } from "@lm4lv/core";
import { degrade, listImages } from "@lm4lv/data";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { LM4LVAdapters } from "@lm4lv/adapters";
import { OrtTensor, OrtTrainingSession, buildLM4LVTrainingGraph, buildLlamaTextTrainingGraph, buildMaePretrainGraph, maeMaskingFeeds, matmulFlops, ortLM4LVGradients, ortLmGradients, ortMaeGradients } from "@lm4lv/onnx";
import type { OnnxGraph } from "@lm4lv/onnx";
import { LM4LV, loadModels } from "@lm4lv/pipeline";
import { lmLoss, tokenWindowBatches } from "@lm4lv/llm";
import type { TokenBatch } from "@lm4lv/llm";
import { ViTMAE, maePretrainTask, maeDecoderFinetuneTask } from "@lm4lv/mae";
import type { MaeBatch } from "@lm4lv/mae";
import { Trainer } from "@lm4lv/train";
import type { GradientFn, LossFn } from "@lm4lv/train";
import { printTable, time, type Row } from "./harness.js";
import { LLAMA_130M } from "./onnx.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const THREADS = 2;
/** The embedded default's frozen MAE and LM (lm-wide: 3 layers × 512, 16 heads of 32, SwiGLU 384, tied head). */
const EMBEDDED_MAE = "models/mae-tiny";
const EMBEDDED_LM = "models/lm-wide";

/** ms of one whole trainer step (median), for a tfjs loss or an external gradient engine. */
async function stepMs<B>(variables: Record<string, tf.Variable>, batch: B, engine: { loss: LossFn<B> } | { gradients: GradientFn<B> }, budgetMs: number): Promise<number> {
  const trainer = new Trainer<B>({ variables, ...engine, data: () => batch, totalSteps: 1e9, progress: false, handleSigint: false });
  const t = await time(() => trainer.trainStep(), { warmup: 1, minRuns: 3, maxRuns: 20, budgetMs });
  trainer.dispose();
  return t.medianMs;
}

/** ms of one forward-only run of a graph (the ORT forward reference for GFLOP/s). */
async function forwardMs(g: OnnxGraph, params: Record<string, { data: Float32Array; shape: readonly number[] }>, feeds: Record<string, OrtTensor>): Promise<number> {
  const s = await OrtTrainingSession.create(g, { intraOpThreads: THREADS });
  const t = await time(() => s.run(params, feeds), { warmup: 2, minRuns: 5, budgetMs: 3000 });
  await s.release();
  return t.medianMs;
}

const paramValues = (vars: Record<string, tf.Variable>) => Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, { data: v.dataSync() as Float32Array, shape: v.shape }]));

interface TorchResult {
  torch: string;
  threads: number;
  blas: { build_blas_info: string | null; loaded: string[]; openblas_config: string | null; gemm_1024_gflops: number };
  workloads: Record<string, { ms_per_step: number }>;
}

/** tools/bench/py/train_bench.py at 1 thread (torch's best setting here); installs torch + OpenBLAS when missing. */
function runTorch(threads: number): TorchResult | string {
  const has = () => spawnSync("/usr/bin/python3", ["-c", "import torch"], { encoding: "utf8" }).status === 0;
  if (!has()) {
    console.log("(python3 cannot import torch: apt-get install -y python3-torch libopenblas0-pthread ...)");
    const apt = spawnSync("apt-get", ["install", "-y", "python3-torch", "libopenblas0-pthread"], { encoding: "utf8", timeout: 15 * 60_000 });
    if (apt.status !== 0 || !has()) return `PyTorch unavailable (apt-get failed: ${(apt.stderr || String(apt.error ?? "")).trim().split("\n").pop()})`;
  }
  const script = fileURLToPath(new URL("../py/train_bench.py", import.meta.url));
  const r = spawnSync("/usr/bin/python3", [script, "--threads", String(threads)], { encoding: "utf8", timeout: 30 * 60_000 });
  if (r.status !== 0) return `train_bench.py failed: ${r.stderr.trim().split("\n").pop()}`;
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as TorchResult;
}

/** Peak RSS (MiB) of a child process running 3 ORT LM4LV steps with the given LM. */
function lm4lvRssChild(which: "embedded" | "130m"): number | string {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL("./run.js", import.meta.url)), "--train-rss-child", which], { encoding: "utf8", timeout: 20 * 60_000 });
  const m = /peak_rss_mib (\d+(?:\.\d+)?)/.exec(r.stdout);
  return m ? Number(m[1]) : `failed: ${(r.stderr || "").trim().split("\n").pop()}`;
}

async function pairsFrom(model: LM4LV, n: number): Promise<{ lq: RgbImage; hq: RgbImage }[]> {
  const dir = join(ROOT, "assets/train-images");
  const files = listImages(dir).slice(0, n);
  const pairs = [];
  for (const [i, f] of files.entries()) {
    const hq = await model.fit(await readImage(join(dir, f)));
    pairs.push({ lq: await degrade("denoise", hq, i), hq });
  }
  return pairs;
}

/** The LM4LV layout of the embedded default (T = 157), for a child building a bigger LM's graph. */
export async function trainRssChild(which: string): Promise<void> {
  await initBackend("wasm");
  const models = await loadModels({ mae: join(ROOT, EMBEDDED_MAE), llm: join(ROOT, EMBEDDED_LM) });
  const small = LM4LV.create(models, { task: "denoise" });
  const layout = small.layout();
  const lm = which === "130m" ? LlamaForCausalLM.fromConfig({ ...LLAMA_130M, model_type: "llama" } as never, 1) : (models.lm as LlamaForCausalLM);
  const adapters = new LM4LVAdapters({ visionHidden: models.vision.hiddenSize, llmHidden: lm.hiddenSize, seed: 0 });
  const vars = adapters.namedVariables();
  const session = await OrtTrainingSession.create(buildLM4LVTrainingGraph(lm, vars, layout, { batch: 4 }), { intraOpThreads: THREADS });
  const n1 = models.vision.numTokens, dv = models.vision.hiddenSize;
  const feats = new OrtTensor("float32", Float32Array.from({ length: 4 * 2 * n1 * dv }, (_, i) => Math.sin(i)), [4, 2, n1, dv]);
  for (let i = 0; i < 3; i++) await session.run(paramValues(vars), { features: feats });
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  console.log(`peak_rss_mib ${(Number(hwm?.[1] ?? 0) / 1024).toFixed(0)}`);
}

export async function benchTrain(): Promise<void> {
  const backend = await initBackend("wasm");
  const torch = runTorch(1);
  const pt = (name: string) => (typeof torch === "string" ? NaN : torch.workloads[name]?.ms_per_step ?? NaN);
  const rows: Row[] = [];
  const flopRows: Row[] = [];
  const add = (what: string, unit: string, items: number, msOrt: number, msTfjs: number, msTorch: number) => {
    rows.push({
      trainer: what,
      "ORT ms/step": msOrt,
      [`tfjs-${backend} ms/step`]: msTfjs,
      "PyTorch ms/step": Number.isFinite(msTorch) ? msTorch : "n/a",
      [`ORT ${unit}/s`]: (1000 * items) / msOrt,
      "ORT vs tfjs": `${(msTfjs / msOrt).toFixed(1)}×`,
      "ORT vs PyTorch": Number.isFinite(msTorch) ? `${(msTorch / msOrt).toFixed(1)}×` : "n/a",
    });
  };

  // --- LM4LV: adapters + task tokens, LM frozen, batch 4, features cached --------------------------
  {
    const models = await loadModels({ mae: join(ROOT, EMBEDDED_MAE), llm: join(ROOT, EMBEDDED_LM) });
    const model = LM4LV.create(models, { task: "denoise" });
    const pairs = await pairsFrom(model, 4);
    const vars = model.adapters.namedVariables();
    const engine = await ortLM4LVGradients(model, { threads: THREADS });
    const msOrt = await stepMs(vars, pairs, { gradients: engine.gradients }, 4000);
    const msTfjs = await stepMs(vars, pairs, { loss: (b: typeof pairs) => { const { loss, ce, mse } = model.loss(b); return { loss, parts: { ce, mse } }; } }, 15000);
    add("lm4lv (embedded default, batch 4)", "pairs", 4, msOrt, msTfjs, pt("lm4lv"));
    const lm = models.lm as LlamaForCausalLM;
    const full = buildLM4LVTrainingGraph(lm, vars, model.layout(), { batch: 4 });
    const fwd = buildLM4LVTrainingGraph(lm, vars, model.layout(), { batch: 4, forwardOnly: true });
    const feats = new OrtTensor("float32", Float32Array.from({ length: 4 * 2 * model.numVisualTokens * models.vision.hiddenSize }, (_, i) => Math.sin(i)), [4, 2, model.numVisualTokens, models.vision.hiddenSize]);
    const msFull = await forwardMs(full, paramValues(vars), { features: feats });
    const msFwd = await forwardMs(fwd, paramValues(vars), { features: feats });
    flopRows.push(flopRow("lm4lv, batch 4", fwd, msFwd, full, msFull));
    await engine.release();
  }

  // --- LM text training: lm-wide shapes (random init), all weights, batch 8 × 128 -----------------
  {
    const config = JSON.parse(readFileSync(join(ROOT, EMBEDDED_LM, "config.json"), "utf8"));
    const model = LlamaForCausalLM.fromConfig(config, 0);
    const variables = model.trainableParameters();
    const corpus = Int32Array.from({ length: 20000 }, (_, i) => (i * 7919) % config.vocab_size);
    const batch = tokenWindowBatches(corpus, { batchSize: 8, seqLen: 128 })(1, new (await import("@lm4lv/train")).TrainRng(0));
    const engine = await ortLmGradients(model, variables, { threads: THREADS });
    const msOrt = await stepMs(variables, batch, { gradients: engine.gradients }, 6000);
    const msTfjs = await stepMs(variables, batch, { loss: (b: TokenBatch) => lmLoss(model, b) }, 20000);
    add("lm text (lm-wide, 8 × 128 tokens)", "tokens", 8 * 128, msOrt, msTfjs, pt("lm"));
    const names = Object.keys(variables);
    const ids = new BigInt64Array(8 * 128).map((_, i) => BigInt(batch.ids[i + Math.floor(i / 128)]));
    const feeds = { input_ids: new OrtTensor("int64", ids, [8, 128]), labels: new OrtTensor("int64", ids.slice(), [8 * 128, 1]) };
    const full = buildLlamaTextTrainingGraph(model, { batch: 8, seqLen: 128, trainable: names });
    const fwd = buildLlamaTextTrainingGraph(model, { batch: 8, seqLen: 128, trainable: names, forwardOnly: true });
    const msFull = await forwardMs(full, paramValues(variables), feeds);
    const msFwd = await forwardMs(fwd, paramValues(variables), feeds);
    flopRows.push(flopRow("lm text, 8 × 128", fwd, msFwd, full, msFull));
    await engine.release();
    model.dispose();
  }

  // --- MAE pre-training and decoder fine-tuning: mae-tiny, batch 16 ------------------------------
  await benchMaeTrain(add, pt, flopRows);

  printTable(`One trainer step on the embedded default's shapes (median; ORT ${THREADS} threads, PyTorch 1 thread)`, rows);
  printTable("ORT achieved GFLOP/s (MatMul FLOPs from the graphs' static shapes): forward+backward vs forward alone", flopRows);
  const rss: Row[] = [];
  for (const which of ["embedded", "130m"] as const) {
    const v = lm4lvRssChild(which);
    rss.push({ "LM4LV step on ORT, batch 4, T = 157": which === "embedded" ? "embedded default (lm-wide, 7.0M LM)" : "~130M Llama (768 × 12, vocab 32000)", "peak RSS MiB": typeof v === "number" ? v : v });
  }
  printTable("Peak RSS of a process running LM4LV training steps on ORT", rss);
  if (typeof torch === "string") console.log(`\nnote: ${torch}`);
  else console.log(`\nPyTorch ${torch.torch}, ${torch.threads} thread(s); BLAS built ${torch.blas.build_blas_info}, loaded ${torch.blas.loaded.join(", ")} (${torch.blas.openblas_config ?? "not OpenBLAS"}), 1024³ GEMM ${torch.blas.gemm_1024_gflops} GFLOP/s`);
}

/** One row of the GFLOP/s table. */
function flopRow(graph: string, fwd: OnnxGraph, msFwd: number, full: OnnxGraph, msFull: number): Row {
  const [f, b] = [matmulFlops(fwd), matmulFlops(full)];
  return { graph, "fwd GFLOP": f / 1e9, "fwd ms": msFwd, "fwd GFLOP/s": f / msFwd / 1e6, "fwd+bwd GFLOP": b / 1e9, "fwd+bwd ms": msFull, "fwd+bwd GFLOP/s": b / msFull / 1e6, "share of fwd rate": `${((100 * b / msFull) / (f / msFwd)).toFixed(0)} %` };
}

/** MAE rows: masked pre-training and spec §6 decoder fine-tuning of mae-tiny, batch 16. */
async function benchMaeTrain(add: (what: string, unit: string, items: number, msOrt: number, msTfjs: number, msTorch: number) => void, pt: (name: string) => number, flopRows: Row[]): Promise<void> {
  const B = 16;
  for (const stage of ["pretrain", "finetune"] as const) {
    const mae = ViTMAE.fromPretrained(join(ROOT, EMBEDDED_MAE));
    const task = stage === "pretrain" ? maePretrainTask(mae) : maeDecoderFinetuneTask(mae);
    const s = mae.imageSize, n = mae.numPatches;
    const batch: MaeBatch = {
      pixels01: Float32Array.from({ length: B * 3 * s * s }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.37)),
      count: B,
      size: s,
      noise: stage === "pretrain" ? Float32Array.from({ length: B * n }, (_, i) => (Math.sin(i * 12.9898) * 43758.5453) % 1 + 1) : null,
    };
    const engine = await ortMaeGradients(mae, task.variables, { stage, batchSize: B, maskRatio: mae.config.mask_ratio, normPixLoss: mae.config.norm_pix_loss, threads: THREADS });
    const msOrt = await stepMs(task.variables, batch, { gradients: engine.gradients }, 5000);
    if (stage === "pretrain") {
      const trainable = Object.keys(task.variables);
      const params = paramValues(task.variables);
      const px = new OrtTensor("float32", batch.pixels01.map((v) => (v - 0.45) / 0.226), [B, 3, s, s]);
      const feeds = { pixel_values: px, ...maeMaskingFeeds(batch.noise!, B, n, mae.config.mask_ratio) };
      const full = buildMaePretrainGraph(mae, { batch: B, trainable });
      const fwd = buildMaePretrainGraph(mae, { batch: B, trainable, forwardOnly: true });
      const [msFull, msFwd] = [await forwardMs(full, params, feeds), await forwardMs(fwd, params, feeds)];
      flopRows.push(flopRow(`mae pre-training, batch ${B}`, fwd, msFwd, full, msFull));
    }
    const msTfjs = await stepMs(task.variables, batch, { loss: task.loss }, 15000);
    add(`mae ${stage === "pretrain" ? "pre-training (mask 0.75)" : "decoder fine-tuning (§6)"} (mae-tiny, batch ${B})`, "images", B, msOrt, msTfjs, pt(stage === "pretrain" ? "mae_pretrain" : "mae_finetune"));
    await engine.release();
    mae.dispose();
  }
}
