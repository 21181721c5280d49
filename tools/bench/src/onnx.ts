/**
 * ONNX Runtime (onnxruntime-node, CPU) vs tfjs-wasm vs PyTorch CPU on the same shapes, side by side
 * in one run: ViTMAE-Base (224/16) encode/decode per image, a ~130M Llama prefill (200 tokens) and
 * decode at context 200, achieved GFLOP/s against the peak of one large GEMM in ORT.
 * Random weights everywhere; fp32; batch 1.
 */
import * as tf from "@tensorflow/tfjs";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend } from "@lm4lv/core";
import { ViTMAE, vitMAEPreset } from "@lm4lv/mae";
import { LlamaForCausalLM, llamaPreset } from "@lm4lv/llm";
import { OnnxGraph, OrtCausalLM, OrtKVCache, OrtSession, OrtTensor, OrtVisionModel, OrtVisualStep, buildEmbed, buildLlamaStep, buildViTDecoder, buildViTEncoder, buildVisualStep, toOrt } from "@lm4lv/onnx";
import { printTable, time, type Row } from "./harness.js";

export const LLAMA_130M = { vocab_size: 32000, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 12 } as const;
const PREFILL = 200;
const TORCH_THREADS = 2;

// --- FLOP counts (multiply-adds × 2) ----------------------------------------------------------

function vitBlocksFlops(t: number, d: number, mlp: number, layers: number): number {
  return layers * (2 * t * (4 * d * d + 2 * d * mlp) + 4 * t * t * d);
}
function vitEncoderFlops(c: ReturnType<typeof vitMAEPreset>): number {
  const n = (c.image_size / c.patch_size) ** 2;
  return 2 * n * 3 * c.patch_size ** 2 * c.hidden_size + vitBlocksFlops(n + 1, c.hidden_size, c.intermediate_size, c.num_hidden_layers);
}
function vitDecoderFlops(c: ReturnType<typeof vitMAEPreset>): number {
  const t = (c.image_size / c.patch_size) ** 2 + 1;
  const dd = c.decoder_hidden_size;
  return 2 * t * c.hidden_size * dd + vitBlocksFlops(t, dd, c.decoder_intermediate_size, c.decoder_num_hidden_layers) + 2 * t * dd * 3 * c.patch_size ** 2;
}
/** T new positions attending to S keys (full score matrices, as computed). */
function llamaFlops(t: number, s: number): number {
  const { hidden_size: c, intermediate_size: i, num_hidden_layers: l, vocab_size: v } = LLAMA_130M;
  return l * (2 * t * (4 * c * c + 3 * c * i) + 4 * t * s * c) + 2 * t * c * v;
}

// --- PyTorch ----------------------------------------------------------------------------------

interface TorchTimings { torch: string; threads: number; vit_encode_ms: number; vit_decode_ms: number; llama_prefill_200_ms: number; llama_decode_ctx200_ms: number }

function hasTorch(): boolean {
  return spawnSync("/usr/bin/python3", ["-c", "import torch"], { encoding: "utf8" }).status === 0;
}

/** Runs tools/bench/py/torch_bench.py; installs Debian's python3-torch first when torch is missing. */
function runTorch(): TorchTimings | string {
  if (!hasTorch()) {
    console.log("(python3 cannot import torch: apt-get install -y python3-torch ...)");
    const apt = spawnSync("apt-get", ["install", "-y", "python3-torch"], { encoding: "utf8", timeout: 15 * 60_000 });
    if (apt.status !== 0 || !hasTorch()) return `PyTorch unavailable (apt-get install python3-torch failed: ${(apt.stderr || String(apt.error ?? "")).trim().split("\n").pop()})`;
  }
  const script = fileURLToPath(new URL("../py/torch_bench.py", import.meta.url));
  const r = spawnSync("/usr/bin/python3", [script, "--threads", String(TORCH_THREADS)], { encoding: "utf8", timeout: 30 * 60_000 });
  if (r.status !== 0) return `PyTorch bench failed: ${r.stderr.trim().split("\n").pop()}`;
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as TorchTimings;
}

// --- ORT peak GEMM ------------------------------------------------------------------------------

/** GFLOP/s of one [n, n] × [n, n] MatMul in ORT (the ceiling for the models' matmuls). */
async function ortPeakGemm(dir: string, threads: number, n = 1024): Promise<number> {
  const g = new OnnxGraph("gemm");
  const a = g.input("a", "float32", [n, n]);
  const w = g.initializer("w", Float32Array.from({ length: n * n }, (_, i) => Math.sin(i) * 0.01), [n, n]);
  g.output(g.op("MatMul", [a, w]), "float32", [n, n], "y");
  const s = await OrtSession.create(g.save(join(dir, "gemm.onnx")).path, { intraOpThreads: threads });
  const feed = { a: new OrtTensor("float32", Float32Array.from({ length: n * n }, (_, i) => Math.cos(i)), [n, n]) };
  const t = await time(() => s.run(feed), { warmup: 2, minRuns: 5, budgetMs: 3000 });
  s.dispose();
  return (2 * n ** 3) / 1e9 / (t.medianMs / 1000);
}

// --- the suite -----------------------------------------------------------------------------------

export async function benchOnnx(): Promise<Row[]> {
  await initBackend("wasm");
  const threads = cpus().length;
  const dir = mkdtempSync(join(tmpdir(), "lm4lv-bench-onnx-"));
  const ms = { ort: {} as Record<string, number>, tfjs: {} as Record<string, number> };
  const flops: Record<string, number> = {};
  try {
    const peak = await ortPeakGemm(dir, threads);

    // ViTMAE-Base
    const config = vitMAEPreset("mae-base");
    const mae = ViTMAE.fromConfig(config, 0);
    buildViTEncoder(mae).save(join(dir, "enc.onnx"));
    buildViTDecoder(mae).save(join(dir, "dec.onnx"));
    const vision = await OrtVisionModel.create(join(dir, "enc.onnx"), join(dir, "dec.onnx"), mae, { intraOpThreads: threads });
    const pixels = tf.randomUniform([1, 3, 224, 224], -2, 2, "float32", 1) as tf.Tensor4D;
    const feats = mae.encodeSync(pixels);
    const run = (f: () => Promise<tf.Tensor>) => async () => { const t = await f(); t.dataSync(); t.dispose(); };
    const opts = { warmup: 1, minRuns: 3, maxRuns: 20, budgetMs: 6000 };
    ms.ort.encode = (await time(run(() => vision.encode(pixels)), opts)).medianMs;
    ms.tfjs.encode = (await time(run(() => mae.encode(pixels)), opts)).medianMs;
    ms.ort.decode = (await time(run(() => vision.decode(feats)), opts)).medianMs;
    ms.tfjs.decode = (await time(run(() => mae.decode(feats)), opts)).medianMs;
    flops.encode = vitEncoderFlops(config);
    flops.decode = vitDecoderFlops(config);
    tf.dispose([pixels, feats]);
    vision.dispose();
    mae.dispose();

    // ~130M Llama
    const lm = LlamaForCausalLM.fromConfig(llamaPreset("tiny", { ...LLAMA_130M, head_dim: 64, max_position_embeddings: 2048, tie_word_embeddings: false }), 0);
    buildLlamaStep(lm).save(join(dir, "step.onnx"));
    buildEmbed(lm).save(join(dir, "embed.onnx"));
    const ortLm = await OrtCausalLM.create(join(dir, "step.onnx"), join(dir, "embed.onnx"), { hiddenSize: 768, vocabSize: 32000, numLayers: 12, numKeyValueHeads: 12, headDim: 64 }, { intraOpThreads: threads });
    const prompt = tf.mul(tf.randomNormal([1, PREFILL, 768], 0, 1, "float32", 2), 0.02) as tf.Tensor3D;
    const next = tf.mul(tf.randomNormal([1, 1, 768], 0, 1, "float32", 3), 0.02) as tf.Tensor3D;
    for (const [engine, model] of [["ort", ortLm], ["tfjs", lm]] as const) {
      const m = model as OrtCausalLM | LlamaForCausalLM;
      ms[engine].prefill = (await time(async () => { const o = await m.forward({ inputsEmbeds: prompt }); o.logits.dataSync(); tf.dispose([o.logits, o.lastHiddenState]); }, { warmup: 1, minRuns: 2, maxRuns: 10, budgetMs: 8000 })).medianMs;
      const cache = await m.forward({ inputsEmbeds: prompt, useCache: true });
      tf.dispose([cache.logits, cache.lastHiddenState]);
      // decode at context 200: the cache is read, not extended (useCache false), so every run sees 200 past positions
      ms[engine].step = (await time(async () => { const o = await m.forward({ inputsEmbeds: next, cache: cache.cache, useCache: false }); o.logits.dataSync(); tf.dispose([o.logits, o.lastHiddenState]); }, { warmup: 2, minRuns: 5, maxRuns: 40, budgetMs: 5000 })).medianMs;
      cache.cache!.dispose();
    }
    // Folded LM4LV visual step (adapter → Llama → norm → de-adapter, Dv 768): ms per visual token
    // after a 200-token prompt (context grows 200 → ~240 while timing).
    const dv = 768;
    const adapterTensors = {
      adapterWeight: tf.mul(tf.randomNormal([768, dv], 0, 1, "float32", 4), 1 / Math.sqrt(dv)) as tf.Tensor2D,
      adapterBias: tf.zeros([768]) as tf.Tensor1D,
      deAdapterWeight: tf.mul(tf.randomNormal([dv, 768], 0, 1, "float32", 5), 1 / Math.sqrt(768)) as tf.Tensor2D,
      deAdapterBias: tf.zeros([dv]) as tf.Tensor1D,
    };
    buildVisualStep(lm, adapterTensors).save(join(dir, "visual.onnx"));
    tf.dispose(Object.values(adapterTensors));
    const visual = await OrtVisualStep.create(join(dir, "visual.onnx"), { hiddenSize: 768, vocabSize: 32000, numLayers: 12, numKeyValueHeads: 12, headDim: 64, visionHidden: dv }, { intraOpThreads: threads });
    const vcache = new OrtKVCache(12);
    let f = await visual.run(toOrt(prompt), new OrtTensor("float32", new Float32Array(0), [1, 0, dv]), vcache);
    const noText = new OrtTensor("float32", new Float32Array(0), [1, 0, 768]);
    ms.ort.visual = (await time(async () => { f = await visual.run(noText, f, vcache); }, { warmup: 2, minRuns: 5, maxRuns: 40, budgetMs: 4000 })).medianMs;
    vcache.dispose();
    visual.dispose();
    flops.visual = llamaFlops(1, PREFILL + 1) - 2 * 768 * 32000 + 2 * 2 * 768 * dv;

    flops.prefill = llamaFlops(PREFILL, PREFILL);
    flops.step = llamaFlops(1, PREFILL + 1);
    tf.dispose([prompt, next]);
    ortLm.dispose();
    lm.dispose();

    const torch = runTorch();
    const pt: Record<string, number> = typeof torch === "string" ? {} : { encode: torch.vit_encode_ms, decode: torch.vit_decode_ms, prefill: torch.llama_prefill_200_ms, step: torch.llama_decode_ctx200_ms };
    const labels: Record<string, string> = {
      encode: "ViTMAE-Base encode (1 image, 197 tokens)",
      decode: "ViTMAE-Base decode (1 image)",
      prefill: `Llama ~130M prefill ${PREFILL} tokens`,
      step: `Llama ~130M decode 1 token at context ${PREFILL}`,
      visual: `folded visual step ~130M (ORT only), ms/visual token, ctx ${PREFILL}+`,
    };
    const rows: Row[] = Object.keys(labels).map((k) => ({
      workload: labels[k],
      "GFLOP": flops[k] / 1e9,
      "ORT ms": ms.ort[k],
      "tfjs-wasm ms": ms.tfjs[k] ?? "n/a",
      "PyTorch ms": pt[k] ?? "n/a",
      "tfjs / ORT": ms.tfjs[k] ? ms.tfjs[k] / ms.ort[k] : "n/a",
      "PyTorch / ORT": pt[k] ? pt[k] / ms.ort[k] : "n/a",
      "ORT GFLOP/s": flops[k] / 1e9 / (ms.ort[k] / 1000),
      "ORT % of peak": (100 * (flops[k] / 1e9 / (ms.ort[k] / 1000))) / peak,
    }));
    rows.push({ workload: `Llama ~130M prefill tokens/s (ORT / tfjs / PyTorch)`, GFLOP: "", "ORT ms": (PREFILL * 1000) / ms.ort.prefill, "tfjs-wasm ms": (PREFILL * 1000) / ms.tfjs.prefill, "PyTorch ms": pt.prefill ? (PREFILL * 1000) / pt.prefill : "n/a", "tfjs / ORT": "", "PyTorch / ORT": "", "ORT GFLOP/s": "", "ORT % of peak": "" });
    printTable(`ORT (${threads} intra-op threads) vs tfjs-wasm vs PyTorch CPU (${TORCH_THREADS} threads), fp32, batch 1, median; ORT peak GEMM 1024³ = ${peak.toFixed(1)} GFLOP/s`, rows);
    if (typeof torch === "string") console.log(`\nnote: ${torch}`);
    else console.log(`\nPyTorch ${torch.torch}, ${torch.threads} threads (own nn.Module versions of the same shapes: tools/bench/py/torch_bench.py)`);
    rows.push({ workload: "ORT peak GEMM GFLOP/s", GFLOP: peak });
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
