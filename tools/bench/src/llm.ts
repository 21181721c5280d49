/**
 * @lm4lv/llm benchmarks on wasm: prefill tokens/s, decode ms/token with the KV cache,
 * forward+backward w.r.t. inputsEmbeds for 160 tokens; peak RSS when loading a ~100M checkpoint.
 */
import * as tf from "@tensorflow/tfjs";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM, llamaPreset } from "@lm4lv/llm";
import { printTable, time, type Row } from "./harness.js";

export const LLM_SHAPES = {
  "tiny ~5M": { vocab_size: 4096, hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 8 },
  "~100M": { vocab_size: 32000, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 8, num_attention_heads: 12, num_key_value_heads: 12 },
} as const;

function paramCount(lm: LlamaForCausalLM): number {
  const c = lm.config;
  const hd = c.head_dim;
  const attn = c.hidden_size * hd * (2 * c.num_attention_heads + 2 * c.num_key_value_heads);
  const mlp = 3 * c.hidden_size * c.intermediate_size;
  const emb = c.vocab_size * c.hidden_size * (c.tie_word_embeddings ? 1 : 2);
  return c.num_hidden_layers * (attn + mlp + 2 * c.hidden_size) + emb + c.hidden_size;
}

export async function benchLlm(): Promise<Row[]> {
  await initBackend("wasm");
  const rows: Row[] = [];
  for (const [name, shape] of Object.entries(LLM_SHAPES)) {
    const lm = LlamaForCausalLM.fromConfig(llamaPreset("tiny", { ...shape, head_dim: shape.hidden_size / shape.num_attention_heads, max_position_embeddings: 2048, tie_word_embeddings: false }), 0);
    const P = paramCount(lm);
    // prefill: 128 tokens
    const ids = tf.tensor2d([Array.from({ length: 128 }, (_, i) => (i * 7) % shape.vocab_size)], undefined, "int32");
    const prefill = await time(() => {
      const out = lm.forwardSync({ inputIds: ids as tf.Tensor2D });
      out.logits.dataSync();
      tf.dispose([out.logits, out.lastHiddenState]);
    }, { budgetMs: 4000 });
    // decode at context ~128: one token per call with the cache
    const cache = lm.newCache();
    const pre = lm.forwardSync({ inputIds: ids as tf.Tensor2D, cache });
    tf.dispose([pre.logits, pre.lastHiddenState]);
    const next = tf.tensor2d([[5]], undefined, "int32");
    let steps = 0;
    const decode = await time(() => {
      const out = lm.forwardSync({ inputIds: next as tf.Tensor2D, cache });
      out.logits.dataSync();
      tf.dispose([out.logits, out.lastHiddenState]);
      steps++;
    }, { warmup: 2, minRuns: 10, maxRuns: 40, budgetMs: 4000 });
    cache.dispose();
    // forward + backward w.r.t. inputsEmbeds, 160 tokens
    const emb = tf.randomNormal([1, 160, shape.hidden_size]) as tf.Tensor3D;
    const w = tf.randomNormal([1, 160, shape.hidden_size]);
    const fb = await time(() => {
      const g = tf.grad((x: tf.Tensor) => {
        const out = lm.forwardSync({ inputsEmbeds: x as tf.Tensor3D });
        return out.lastHiddenState.mul(w).sum();
      })(emb);
      g.dataSync();
      g.dispose();
    }, { warmup: 1, minRuns: 2, maxRuns: 10, budgetMs: 6000 });
    rows.push({
      shape: name,
      "params (M)": P / 1e6,
      "prefill 128 tok/s": 128 / (prefill.medianMs / 1000),
      "decode ms/token (ctx ~128)": decode.medianMs,
      "fwd+bwd 160 tok ms": fb.medianMs,
      "fwd+bwd GFLOP/s": (6 * P * 160) / 1e9 / (fb.medianMs / 1000),
    });
    tf.dispose([ids, next, emb, w]);
    lm.dispose();
  }
  printTable("Llama on tfjs-wasm (random weights, batch 1, median)", rows);
  rows.push(...benchLlmLoadMemory());
  return rows;
}

/** Saves the ~100M model, then loads it in a fresh process and reports its peak RSS against the file size. */
function benchLlmLoadMemory(): Row[] {
  const dir = mkdtempSync(join(tmpdir(), "lm4lv-bench-llm-"));
  const shape = LLM_SHAPES["~100M"];
  const lm = LlamaForCausalLM.fromConfig(llamaPreset("tiny", { ...shape, head_dim: 64, max_position_embeddings: 2048, tie_word_embeddings: false }), 0);
  lm.save(dir);
  lm.dispose();
  const self = fileURLToPath(import.meta.url).replace(/llm\.(ts|js)$/, "run.js");
  const rows: Row[] = [];
  const child = spawnSync(process.execPath, [self, "--llm-load-child", dir], { encoding: "utf8", env: { ...process.env } });
  if (child.status !== 0) {
    console.error(child.stderr);
    throw new Error("llm load child failed");
  }
  const r = JSON.parse(child.stdout.trim().split("\n").pop()!);
  rows.push({ what: "load ~100M F32 checkpoint", "file MiB": r.fileMiB, "load s": r.loadS, "RSS before MiB": r.rssBefore, "peak RSS MiB": r.peakRss, "peak − before MiB": r.peakRss - r.rssBefore });
  rmSync(dir, { recursive: true, force: true });
  printTable("Peak memory loading a ~100M Llama checkpoint from disk (fresh process, wasm)", rows);
  return rows;
}

/** Child-process side of benchLlmLoadMemory. */
export async function llmLoadChild(dir: string): Promise<void> {
  const { statSync } = await import("node:fs");
  await initBackend("wasm");
  const rssBefore = process.memoryUsage().rss / 2 ** 20;
  const t0 = performance.now();
  const lm = LlamaForCausalLM.fromPretrained(dir);
  const loadS = (performance.now() - t0) / 1000;
  const peakRss = process.resourceUsage().maxRSS / 1024;
  const fileMiB = statSync(join(dir, "model.safetensors")).size / 2 ** 20;
  lm.dispose();
  console.log(JSON.stringify({ rssBefore, peakRss, loadS, fileMiB }));
}
