/**
 * pnpm train lm: text pre-training of the small Llama LM (the embedded default). Parses options and
 * hands them to @lm4lv/llm's trainLm (tokenizer → corpus → Llama → training → HF folder + report.json),
 * with ONNX Runtime gradients and the induction test (a probe) from @lm4lv/onnx.
 */
import { z } from "zod";
import { initBackend, oneOf, positiveInt } from "@lm4lv/core";
import { trainLm, LM_ADDED_TOKENS, LM_TRAINING_OPTIONS } from "@lm4lv/llm";
import type { LlamaForCausalLM, LmGradientEngine } from "@lm4lv/llm";
import type { InductionResult } from "@lm4lv/onnx";
import { parseOptions, usage } from "../options.js";
import { chooseEngine } from "../engine.js";

// The run's settings and their defaults are trainLm's (LM_TRAINING_OPTIONS); this adds the backend and engine.
const L = LM_TRAINING_OPTIONS.shape;

export const LM_OPTIONS = z.object({
  text: L.text.describe("training text (documents separated by blank lines)"),
  valText: L.valText.describe("held-out text for perplexity"),
  out: L.out.describe("output folder (HF model folder, loss.svg, loss.csv, report.json)"),
  tokenizer: L.tokenizer.describe("tokenizer.json (or its folder) to use instead of training one"),
  vocabSize: L.vocabSize.describe("BPE vocabulary when training the tokenizer"),
  templateCopies: L.templateCopies.describe("copies of the ### Human/Assistant template mixed into the BPE corpus"),
  hiddenSize: L.hiddenSize.describe("hidden_size"),
  numLayers: L.numLayers.describe("num_hidden_layers"),
  numHeads: L.numHeads.describe("num_attention_heads"),
  numKvHeads: L.numKvHeads.describe("num_key_value_heads"),
  intermediateSize: L.intermediateSize.describe("intermediate_size (SwiGLU width)"),
  maxPositions: L.maxPositions.describe("max_position_embeddings"),
  tieEmbeddings: L.tieEmbeddings.describe("tie_word_embeddings"),
  steps: L.steps.describe("optimisation steps"),
  batchSize: L.batchSize.describe("windows per micro-batch"),
  seqLen: L.seqLen.describe("tokens per window"),
  gradAccum: L.gradAccum.describe("micro-batches per step"),
  lr: L.lr.describe("peak learning rate (warmup-linear schedule, spec §7)"),
  weightDecay: L.weightDecay.describe("Adam weight decay"),
  embedNoise: L.embedNoise.describe("input-embedding noise α during training: x + α·rms(x)·z, z ~ N(0, I) (0: none)"),
  clipNorm: L.clipNorm.describe("gradient clipping (global norm)"),
  seed: L.seed.describe("seed of the init and of the window draws"),
  checkpointDir: L.checkpointDir.describe("checkpoint folder (default <out>/checkpoints)"),
  checkpointEvery: L.checkpointEvery.describe("save last.safetensors every n steps"),
  validateEvery: L.validateEvery.describe("held-out perplexity every n steps (0: only at the end)"),
  evalWindows: L.evalWindows.describe("held-out windows of seq_len tokens for perplexity (0: all)"),
  samplePrompt: L.samplePrompt.describe("prompt of the greedy sample"),
  sampleTokens: L.sampleTokens.describe("new tokens of the greedy sample"),
  resume: L.resume.describe("continue from <checkpoint-dir>/last.safetensors"),
  repeats: z.string().optional().describe("insert verbatim repeats of earlier spans into windows, e.g. \"p=0.5,len=20-70,gap=0-40\" (offset=D or A-B instead of gap: the copy starts that far after the span's start, several ranges joined by | drawn uniformly per window; copies=A-B: consecutive copies; random=F: that fraction of spans made of random token ids)"),
  backend: z.string().optional().describe("tfjs backend (wasm, cpu, tensorflow)"),
  engine: oneOf(["ort", "tfjs"]).optional().describe("gradient engine (default: ort when onnxruntime-node loads, else tfjs)"),
  threads: positiveInt().optional().describe("ONNX Runtime threads (default: the number of cores)"),
});

const SUMMARY = "Trains a byte-level BPE tokenizer (unless --tokenizer) and a small Llama LM on plain text.";

/** The induction test ([BOS] + R + R) on tokens that are not the 3 special ids nor the added "<Img>"/"</Img>" (the last ids). */
async function induction(model: LlamaForCausalLM): Promise<InductionResult> {
  const { inductionTest } = await import("@lm4lv/onnx"); // loads onnxruntime-node: only when the probe runs
  return inductionTest(model, { bosId: model.config.bos_token_id ?? 1, firstToken: 3, reservedTop: LM_ADDED_TOKENS.length });
}

export async function lmCommand(argv: string[]): Promise<number> {
  const { options: o, help } = parseOptions(argv, LM_OPTIONS);
  if (help) {
    console.log(usage("lm", SUMMARY, LM_OPTIONS));
    return 0;
  }
  const backend = await initBackend(o.backend);
  console.error(`backend ${backend}`);
  const engine = await chooseEngine(o.engine);
  const gradients: LmGradientEngine = async (model, variables, { embeddingNoise }) => (await import("@lm4lv/onnx")).ortLmGradients(model, variables, { threads: o.threads, embeddingNoise });
  let last: InductionResult | undefined;
  const probe = async (model: LlamaForCausalLM) => {
    const r = (last = await induction(model));
    const report = { length: r.length, batch: r.batch, first_copy_loss: r.firstCopyLoss, second_copy_loss: r.secondCopyLoss, uniform_loss: r.uniformLoss, best_head: r.best, heads: r.heads };
    return { metrics: { induction_second_copy_loss: r.secondCopyLoss, induction_best_head: r.best.score }, report: { induction: report } };
  };
  const result = await trainLm({ ...o, gradients: engine === "ort" ? gradients : undefined, probe, reportOptions: o });
  if (result.status === "stopped" || !result.report || !last) return 0;
  const { val, unigram_val: unigram, sample } = result.report;
  console.log(`val perplexity ${val.perplexity.toFixed(1)} (unigram ${unigram.perplexity.toFixed(1)}) over ${val.tokens} tokens`);
  console.log(`sample: ${JSON.stringify(o.samplePrompt)} → ${JSON.stringify(sample.text)}`);
  console.log(`induction ([BOS] + R + R, |R| = ${last.length}): loss ${last.firstCopyLoss.toFixed(2)} → ${last.secondCopyLoss.toFixed(2)} nats on the second copy (ln V = ${last.uniformLoss.toFixed(2)}); best head L${last.best.layer}H${last.best.head} ${last.best.score.toFixed(3)}`);
  console.log(`wrote ${result.modelDir} (config.json, model.safetensors, tokenizer.json, tokenizer_config.json, loss.svg, loss.csv, report.json)`);
  return 0;
}
