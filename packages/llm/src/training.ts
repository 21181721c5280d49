/**
 * Text pre-training of a Llama LM (`pnpm train lm`), in order: tokenizer (given, reused on resume,
 * or trained with BPE) → corpus encoding → a randomly initialised model whose every parameter is
 * trainable (`trainableParameters`, HF names and layout) → @lm4lv/train's Trainer (Adam, spec §7
 * schedule, clipping, accumulation, checkpoints with exact resume) on next-token cross-entropy →
 * the HF folder (config.json, model.safetensors F16, tokenizer files), loss.svg + loss.csv and
 * report.json (held-out perplexity, the unigram baseline, a greedy sample).
 *
 * Gradients: tfjs autodiff of `lmLoss`, or an external engine given as `gradients` (ONNX Runtime:
 * `ortLmGradients` of @lm4lv/onnx). Extra measures (e.g. the induction test of @lm4lv/pipeline)
 * come in through `probe`.
 *
 * Notation: B batch, T window length (seq_len), V vocabulary, C hidden.
 */
import * as tf from "@tensorflow/tfjs";
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { fieldPath, nonNegativeInt, nonNegativeNumber, positiveInt, positiveNumber, validateConfig, writeFileAtomic } from "@lm4lv/core";
import { Tokenizer } from "@lm4lv/tokenizer";
import { runTraining, transposeTensorData } from "@lm4lv/train";
import type { FloatTensorData, GradientFn, HistoryEntry, Trainer, TrainResult } from "@lm4lv/train";
import { LlamaForCausalLM } from "./model.js";
import type { LlamaConfig } from "./config.js";
import { DEFAULT_TEMPLATE_COPIES, LM_ADDED_TOKENS, encodeCorpus, parseRepeatOptions, splitDocuments, tokenWindowBatches, trainLmTokenizer } from "./corpus.js";
import type { RepeatOptions, TokenBatch } from "./corpus.js";
import { evaluatePerplexity, evaluatedTargets, greedySample, unigramPerplexity } from "./evaluation.js";
import { lmLoss } from "./loss.js";
import type { EmbeddingNoise } from "./loss.js";

// ---------------------------------------------------------------------------------------------
// Checkpoints written before HF-layout parameters

/**
 * Checkpoints of format lm4lv-train/1 held each Linear weight as a kernel `[in, out]` named
 * `<module>.kernel`; today's variables are `<module>.weight` `[out, in]` (the trainer's `upgradeLegacy`).
 */
export function legacyLlamaTensor(name: string, t: FloatTensorData): [string, FloatTensorData] {
  return name.endsWith(".kernel") ? [`${name.slice(0, -".kernel".length)}.weight`, transposeTensorData(t)] : [name, t];
}

// ---------------------------------------------------------------------------------------------
// A whole run

/** An external gradient engine, e.g. ONNX Runtime's (`ortLmGradients` of @lm4lv/onnx). */
export interface LmGradients {
  /** Shown in the log ("onnxruntime"). */
  name: string;
  gradients: GradientFn<TokenBatch>;
  release(): Promise<void>;
}

/** Builds the engine for the run's model and trained variables (every parameter, by HF name). */
export type LmGradientEngine = (model: LlamaForCausalLM, variables: Record<string, tf.Variable>, opts: { embeddingNoise?: EmbeddingNoise }) => Promise<LmGradients>;

/** What a `probe` measures: values added to each validation, and sections added to report.json. */
export interface LmProbeResult {
  metrics: Record<string, number>;
  report: Record<string, unknown>;
}

/**
 * The settings of `trainLm` and their defaults (the shape of the embedded default LM, models/lm-wide) — the
 * one place each default lives; the names are `pnpm train lm`'s flags (camelCase). The model
 * fields give the Llama config (`vocab_size` is the tokenizer's; RMSNorm eps 1e-5, RoPE θ 10000,
 * init std 0.02).
 */
export const LM_TRAINING_OPTIONS = z.object({
  /** Training text (documents separated by blank lines). */
  text: z.string("expected a text file"),
  /** Held-out text for perplexity. */
  valText: z.string("expected a text file"),
  /** Output folder: HF model folder, loss.svg, loss.csv, metrics.jsonl, report.json. */
  out: z.string("expected a folder"),
  /** tokenizer.json (or its folder) to use instead of training one. */
  tokenizer: z.string().optional(),
  /** BPE vocabulary when training the tokenizer. */
  vocabSize: positiveInt().default(4096),
  /** Copies of the ### Human/Assistant template mixed into the BPE corpus. */
  templateCopies: nonNegativeInt().default(DEFAULT_TEMPLATE_COPIES),
  hiddenSize: positiveInt().default(512),
  numLayers: positiveInt().default(3),
  numHeads: positiveInt().default(16),
  numKvHeads: positiveInt().default(16),
  /** SwiGLU width. */
  intermediateSize: positiveInt().default(384),
  /** max_position_embeddings (and the tokenizer's model_max_length). */
  maxPositions: positiveInt().default(512),
  tieEmbeddings: z.boolean().default(true),
  steps: positiveInt().default(200),
  /** Windows per micro-batch. */
  batchSize: positiveInt().default(8),
  /** Tokens per window. */
  seqLen: positiveInt().default(128),
  gradAccum: positiveInt().default(1),
  /** Peak learning rate (warmup-linear schedule, spec §7). */
  lr: positiveNumber().default(2e-3),
  weightDecay: nonNegativeNumber().default(0),
  /** Input-embedding noise α during training (x + α·rms(x)·z; 0: none; see EmbeddingNoise in loss.ts). */
  embedNoise: nonNegativeNumber().default(0),
  /** Gradient clipping (global norm). */
  clipNorm: positiveNumber().default(1),
  /** Seed of the init and of the window draws. */
  seed: z.number("expected an integer").int("expected an integer").default(0),
  /** Default `<out>/checkpoints`. */
  checkpointDir: z.string().optional(),
  /** Save last.safetensors every n steps. */
  checkpointEvery: nonNegativeInt().default(25),
  /** Held-out perplexity every n steps (0: only at the end). */
  validateEvery: nonNegativeInt().default(0),
  /** Held-out windows of seq_len tokens for perplexity (0: all). */
  evalWindows: nonNegativeInt().default(64),
  /** Prompt and new tokens of the greedy sample. */
  samplePrompt: z.string().default("The President"),
  sampleTokens: nonNegativeInt().default(48),
  resume: z.boolean().default(false),
});

export type LmTrainSettings = z.output<typeof LM_TRAINING_OPTIONS>;

export type LmTrainOptions = z.input<typeof LM_TRAINING_OPTIONS> & {
  /** Verbatim repeats in the windows (RepeatOptions, or its CLI form "p=0.5,len=20-70,gap=0-40"). */
  repeats?: RepeatOptions | string;
  /** An external gradient engine (e.g. `ortLmGradients` of @lm4lv/onnx); default tfjs autodiff. */
  gradients?: LmGradientEngine;
  /** Extra measures of the model at each validation and at the end (e.g. the induction test). */
  probe?: (model: LlamaForCausalLM) => Promise<LmProbeResult>;
  /** Stored as `options` in report.json (e.g. the parsed command line). */
  reportOptions?: unknown;
  /** Stderr messages (default console.error). */
  log?: (message: string) => void;
  progress?: boolean;
  handleSigint?: boolean;
  onStep?: (entry: HistoryEntry, trainer: Trainer<TokenBatch>) => void | Promise<void>;
};

export interface LmTrainResult {
  status: TrainResult["status"];
  steps: number;
  /** report.json's content (absent when the run was stopped before the end). */
  report?: Record<string, unknown> & { val: { mean_loss: number; perplexity: number; tokens: number }; unigram_val: { perplexity: number }; sample: { text: string } };
  /** Where the model was written (absent when the run was stopped before the end). */
  modelDir?: string;
}

function readDocuments(path: string): string[] {
  if (!existsSync(path)) throw new Error(`${path}: text file not found`);
  const docs = splitDocuments(readFileSync(path, "utf8"));
  if (docs.length === 0) throw new Error(`${path}: no text`);
  return docs;
}

/** Puts tokenizer.json (+ tokenizer_config.json) into `out`: copied from `given`, kept on resume, or trained. */
function prepareTokenizer(o: LmTrainSettings, out: string, trainDocs: string[], log: (m: string) => void): void {
  const tokPath = join(out, "tokenizer.json");
  const tokConfigPath = join(out, "tokenizer_config.json");
  if (o.tokenizer !== undefined) {
    if (!existsSync(o.tokenizer)) throw new Error(`${o.tokenizer}: tokenizer not found`);
    const isDir = statSync(o.tokenizer).isDirectory();
    const file = isDir ? join(o.tokenizer, "tokenizer.json") : o.tokenizer;
    const config = join(isDir ? o.tokenizer : dirname(o.tokenizer), "tokenizer_config.json");
    if (!existsSync(file)) throw new Error(`${file}: tokenizer.json not found`);
    if (resolve(file) !== tokPath) copyFileSync(file, tokPath);
    if (existsSync(config) && resolve(config) !== tokConfigPath) copyFileSync(config, tokConfigPath);
  } else if (!(o.resume && existsSync(tokPath))) {
    const t0 = Date.now();
    const files = trainLmTokenizer(trainDocs, { vocabSize: o.vocabSize, templateCopies: o.templateCopies, maxLength: o.maxPositions });
    writeFileAtomic(tokPath, JSON.stringify(files.tokenizerJson) + "\n");
    writeFileAtomic(tokConfigPath, JSON.stringify(files.tokenizerConfig, null, 2) + "\n");
    log(`tokenizer: trained BPE (${o.vocabSize} ids) in ${((Date.now() - t0) / 1000).toFixed(1)} s → ${tokPath}`);
  }
}

/** Trains the tokenizer (unless given) and the LM, writes the HF folder and report.json to `out`. */
export async function trainLm(options: LmTrainOptions): Promise<LmTrainResult> {
  const o = { ...options, ...validateConfig(options, LM_TRAINING_OPTIONS, (path) => `trainLm: ${fieldPath(path)}`) };
  const log = o.log ?? ((m: string) => console.error(m));
  const out = resolve(o.out);
  const { seqLen, batchSize } = o;
  mkdirSync(out, { recursive: true });

  // 1. Tokenizer: given, reused from `out` on resume, or trained on the training documents.
  const trainDocs = readDocuments(o.text);
  const valDocs = readDocuments(o.valText);
  prepareTokenizer(o, out, trainDocs, log);
  const tokenizer = await Tokenizer.fromPretrained(out);

  // 2. Corpus → token streams.
  const trainTokens = encodeCorpus(tokenizer, trainDocs);
  const valTokens = encodeCorpus(tokenizer, valDocs);
  log(`tokens: train ${trainTokens.length}, val ${valTokens.length}`);

  // 3. Model: random init, every parameter trainable.
  const modelConfig = {
    vocab_size: tokenizer.vocabSize,
    hidden_size: o.hiddenSize,
    intermediate_size: o.intermediateSize,
    num_hidden_layers: o.numLayers,
    num_attention_heads: o.numHeads,
    num_key_value_heads: o.numKvHeads,
    max_position_embeddings: o.maxPositions,
    tie_word_embeddings: o.tieEmbeddings,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    initializer_range: 0.02,
    bos_token_id: tokenizer.bosId ?? null,
    eos_token_id: tokenizer.eosId ?? null,
  };
  const model = LlamaForCausalLM.fromConfig(modelConfig as Partial<LlamaConfig> as Record<string, unknown>, o.seed);
  try {
    const variables = model.trainableParameters();
    const params = model.parameterCount();
    log(`model: ${params} parameters (${(params * 2 / 1e6).toFixed(1)} MB as F16)`);

    // 4. Train.
    const evalOptions = { seqLen, batchSize, maxWindows: o.evalWindows > 0 ? o.evalWindows : undefined };
    const validate = async () => {
      const r = evaluatePerplexity(model, valTokens, evalOptions);
      const extra = o.probe ? (await o.probe(model)).metrics : {};
      return { metric: r.meanLoss, val_loss: r.meanLoss, val_ppl: r.perplexity, ...extra };
    };
    const embeddingNoise: EmbeddingNoise | undefined = o.embedNoise > 0 ? { alpha: o.embedNoise, seed: o.seed } : undefined;
    const engine = o.gradients ? await o.gradients(model, variables, { embeddingNoise }) : undefined;
    log(`gradient engine: ${engine ? engine.name : `tfjs-${tf.getBackend()}`}`);
    // window ids of repeats.random: not the 3 special ids, not the added "<Img>"/"</Img>" (the last ids)
    const randomTokens: [number, number] = [3, tokenizer.vocabSize - LM_ADDED_TOKENS.length];
    const t0 = Date.now();
    let startStep: number | undefined;
    const result = await runTraining<TokenBatch>({
      variables,
      ...(engine ? { gradients: engine.gradients } : { loss: (batch: TokenBatch) => lmLoss(model, batch, embeddingNoise) }),
      metricsFile: join(out, "metrics.jsonl"),
      data: tokenWindowBatches(trainTokens, { batchSize, seqLen, repeats: typeof o.repeats === "string" ? parseRepeatOptions(o.repeats) : o.repeats, randomTokens }),
      totalSteps: o.steps,
      seed: o.seed,
      optimizer: { lr: o.lr, weightDecay: o.weightDecay },
      clipNorm: o.clipNorm,
      accumulate: o.gradAccum,
      batchSize: batchSize * seqLen,
      checkpointDir: o.checkpointDir ?? join(out, "checkpoints"),
      checkpointEvery: o.checkpointEvery,
      resume: o.resume,
      upgradeLegacy: legacyLlamaTensor,
      validate,
      validateEvery: o.validateEvery,
      lossPlot: join(out, "loss.svg"),
      progress: o.progress,
      handleSigint: o.handleSigint,
      onStep: (entry, trainer) => {
        startStep ??= entry.step - 1;
        return o.onStep?.(entry, trainer);
      },
      config: { model: modelConfig, batchSize, seqLen, gradAccum: o.gradAccum, lr: o.lr, seed: o.seed, steps: o.steps, ...(embeddingNoise ? { embedNoise: o.embedNoise } : {}) },
    }).finally(() => engine?.release());
    const seconds = (Date.now() - t0) / 1000;
    startStep ??= result.step;
    if (result.status === "stopped") {
      log(`stopped at step ${result.step}; continue with --resume`);
      return { status: result.status, steps: result.step };
    }

    // 5. Export and report.
    model.save(out, { dtype: "F16" });
    const lm = evaluatePerplexity(model, valTokens, evalOptions);
    const targets = evaluatedTargets(valTokens, evalOptions);
    const unigram = unigramPerplexity(trainTokens, targets, tokenizer.vocabSize);
    const unigramAll = unigramPerplexity(trainTokens, valTokens, tokenizer.vocabSize);
    const sample = greedySample(model, tokenizer, o.samplePrompt, o.sampleTokens);
    const tokensPerStep = batchSize * seqLen * o.gradAccum;
    const extra = o.probe ? (await o.probe(model)).report : {};
    const report = {
      steps: result.step,
      tokens_seen: result.step * tokensPerStep,
      tokens_per_step: tokensPerStep,
      train_tokens: trainTokens.length,
      val_tokens: valTokens.length,
      parameters: params,
      wall_seconds_this_run: Math.round(seconds),
      steps_this_run: result.step - startStep,
      tokens_per_second_this_run: Math.round(((result.step - startStep) * tokensPerStep) / seconds),
      final_train_loss: result.history.at(-1)?.loss ?? null,
      val: { mean_loss: lm.meanLoss, perplexity: lm.perplexity, tokens: lm.tokens },
      unigram_val: { mean_loss: unigram.meanLoss, perplexity: unigram.perplexity, tokens: unigram.tokens },
      unigram_val_all: { mean_loss: unigramAll.meanLoss, perplexity: unigramAll.perplexity, tokens: unigramAll.tokens },
      sample: { prompt: o.samplePrompt, greedy_tokens: o.sampleTokens, text: sample },
      ...extra,
      options: o.reportOptions ?? null,
    };
    writeFileAtomic(join(out, "report.json"), JSON.stringify(report, null, 2) + "\n");
    return { status: result.status, steps: result.step, report, modelDir: out };
  } finally {
    model.dispose();
  }
}
