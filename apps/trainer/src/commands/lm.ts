/**
 * pnpm train lm: text pre-training of the small Llama LM (the embedded default).
 *
 * tokenizer (trained with BPE unless --tokenizer is given) → encode train/val → Llama with
 * trainable weights → runTraining (Adam, §7 schedule, clipping, checkpoints, resume) →
 * HF folder (config.json, model.safetensors F16, tokenizer files), loss.svg + loss.csv, report.json.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { initBackend, writeFileAtomic } from "@lm4lv/core";
import { Tokenizer } from "@lm4lv/tokenizer";
import { runTraining } from "@lm4lv/train";
import {
  trainLmTokenizer,
  splitDocuments,
  encodeCorpus,
  trainableLlama,
  legacyLlamaTensor,
  parameterCount,
  tokenWindowBatches,
  lmLoss,
  ortLmGradients,
  ortAvailable,
  parseRepeatOptions,
  LM_ADDED_TOKENS,
  inductionTest,
  evaluatePerplexity,
  evaluatedTargets,
  unigramPerplexity,
  greedySample,
} from "@lm4lv/pipeline";
import type { TokenBatch } from "@lm4lv/pipeline";
import { z } from "zod";
import { nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from "@lm4lv/core";
import { parseOptions, usage } from "../options.js";

export const LM_OPTIONS = z.object({
  text: z.string("expected a text file").describe("training text (documents separated by blank lines)"),
  valText: z.string("expected a text file").describe("held-out text for perplexity"),
  out: z.string("expected a folder").describe("output folder (HF model folder, loss.svg, loss.csv, report.json)"),
  tokenizer: z.string().optional().describe("tokenizer.json (or its folder) to use instead of training one"),
  vocabSize: positiveInt().default(4096).describe("BPE vocabulary when training the tokenizer"),
  templateCopies: nonNegativeInt().default(200).describe("copies of the ### Human/Assistant template mixed into the BPE corpus"),
  hiddenSize: positiveInt().default(256).describe("hidden_size"),
  numLayers: positiveInt().default(6).describe("num_hidden_layers"),
  numHeads: positiveInt().default(8).describe("num_attention_heads"),
  numKvHeads: positiveInt().default(8).describe("num_key_value_heads"),
  intermediateSize: positiveInt().default(704).describe("intermediate_size (SwiGLU width)"),
  maxPositions: positiveInt().default(512).describe("max_position_embeddings"),
  tieEmbeddings: z.boolean().default(true).describe("tie_word_embeddings"),
  steps: positiveInt().default(200).describe("optimisation steps"),
  batchSize: positiveInt().default(8).describe("windows per micro-batch"),
  seqLen: positiveInt().default(128).describe("tokens per window"),
  gradAccum: positiveInt().default(1).describe("micro-batches per step"),
  lr: positiveNumber().default(2e-3).describe("peak learning rate (warmup-linear schedule, spec §7)"),
  weightDecay: nonNegativeNumber().default(0).describe("Adam weight decay"),
  clipNorm: positiveNumber().default(1).describe("gradient clipping (global norm)"),
  seed: z.number("expected an integer").int("expected an integer").default(0).describe("seed of the init and of the window draws"),
  checkpointDir: z.string().optional().describe("checkpoint folder (default <out>/checkpoints)"),
  checkpointEvery: nonNegativeInt().default(25).describe("save last.safetensors every n steps"),
  validateEvery: nonNegativeInt().default(0).describe("held-out perplexity every n steps (0: only at the end)"),
  evalWindows: nonNegativeInt().default(64).describe("held-out windows of seq_len tokens for perplexity (0: all)"),
  samplePrompt: z.string().default("The President").describe("prompt of the greedy sample"),
  sampleTokens: nonNegativeInt().default(48).describe("new tokens of the greedy sample"),
  resume: z.boolean().default(false).describe("continue from <checkpoint-dir>/last.safetensors"),
  backend: z.string().optional().describe("tfjs backend (wasm, cpu, tensorflow)"),
  repeats: z.string().optional().describe("insert verbatim repeats of earlier spans into windows, e.g. \"p=0.5,len=20-70,gap=0-40\" (copies=A-B: consecutive copies; random=F: that fraction of spans made of random token ids)"),
  engine: oneOf(["ort", "tfjs"]).optional().describe("gradient engine (default: ort when onnxruntime-node loads, else tfjs)"),
  threads: positiveInt().optional().describe("ONNX Runtime threads (default: the number of cores)"),
});

const SUMMARY = "Trains a byte-level BPE tokenizer (unless --tokenizer) and a small Llama LM on plain text.";

function readDocuments(path: string): string[] {
  if (!existsSync(path)) throw new Error(`${path}: text file not found`);
  const docs = splitDocuments(readFileSync(path, "utf8"));
  if (docs.length === 0) throw new Error(`${path}: no text`);
  return docs;
}

export async function lmCommand(argv: string[]): Promise<number> {
  const { options: o, help } = parseOptions(argv, LM_OPTIONS);
  if (help) {
    console.log(usage("lm", SUMMARY, LM_OPTIONS));
    return 0;
  }
  const textPath = o.text;
  const valPath = o.valText;
  const out = resolve(o.out);
  const ckptDir = o.checkpointDir ?? join(out, "checkpoints");
  const { seqLen, batchSize } = o;
  mkdirSync(out, { recursive: true });
  const backend = await initBackend(o.backend);
  console.error(`backend ${backend}`);

  // 1. Tokenizer: given, reused from --out on resume, or trained on the training documents.
  const trainDocs = readDocuments(textPath);
  const valDocs = readDocuments(valPath);
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
    console.error(`tokenizer: trained BPE (${o.vocabSize} ids) in ${((Date.now() - t0) / 1000).toFixed(1)} s → ${tokPath}`);
  }
  const tokenizer = await Tokenizer.fromPretrained(out);

  // 2. Corpus → token streams.
  const trainTokens = encodeCorpus(tokenizer, trainDocs);
  const valTokens = encodeCorpus(tokenizer, valDocs);
  console.error(`tokens: train ${trainTokens.length}, val ${valTokens.length}`);

  // 3. Model.
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
  const { model, variables } = trainableLlama(modelConfig, o.seed);
  const params = parameterCount(variables);
  console.error(`model: ${params} parameters (${(params * 2 / 1e6).toFixed(1)} MB as F16)`);

  // 4. Train.
  const evalOptions = { seqLen, batchSize, maxWindows: o.evalWindows > 0 ? o.evalWindows : undefined };
  // random tokens of the induction test: not the 3 special ids, not the added "<Img>"/"</Img>" (the last ids)
  const inductionOptions = { bosId: tokenizer.bosId ?? 1, firstToken: 3, reservedTop: LM_ADDED_TOKENS.length };
  const validate = async () => {
    const r = evaluatePerplexity(model, valTokens, evalOptions);
    const ind = await inductionTest(model, inductionOptions);
    return { metric: r.meanLoss, val_loss: r.meanLoss, val_ppl: r.perplexity, induction_second_copy_loss: ind.secondCopyLoss, induction_best_head: ind.best.score };
  };
  const engine = o.engine ?? ((await ortAvailable()) ? "ort" : "tfjs");
  const ort = engine === "ort" ? await ortLmGradients(model, variables, { threads: o.threads }) : undefined;
  console.error(`gradient engine: ${engine === "ort" ? "onnxruntime" : `tfjs-${backend}`}`);
  const t0 = Date.now();
  let startStep: number | undefined;
  const result = await runTraining<TokenBatch>({
    variables,
    ...(ort ? { gradients: ort.gradients } : { loss: (batch: TokenBatch) => lmLoss(model, batch) }),
    metricsFile: join(out, "metrics.jsonl"),
    data: tokenWindowBatches(trainTokens, { batchSize, seqLen, repeats: o.repeats !== undefined ? parseRepeatOptions(o.repeats) : undefined, randomTokens: [inductionOptions.firstToken, tokenizer.vocabSize - inductionOptions.reservedTop] }),
    totalSteps: o.steps,
    seed: o.seed,
    optimizer: { lr: o.lr, weightDecay: o.weightDecay },
    clipNorm: o.clipNorm,
    accumulate: o.gradAccum,
    batchSize: batchSize * seqLen,
    checkpointDir: ckptDir,
    checkpointEvery: o.checkpointEvery,
    resume: o.resume,
    upgradeLegacy: legacyLlamaTensor,
    validate,
    validateEvery: o.validateEvery,
    lossPlot: join(out, "loss.svg"),
    onStep: (entry) => {
      startStep ??= entry.step - 1;
    },
    config: { model: modelConfig, batchSize, seqLen, gradAccum: o.gradAccum, lr: o.lr, seed: o.seed, steps: o.steps },
  }).finally(() => ort?.release());
  const seconds = (Date.now() - t0) / 1000;
  startStep ??= result.step;
  if (result.status === "stopped") {
    console.error(`stopped at step ${result.step}; continue with --resume`);
    model.dispose();
    return 0;
  }

  // 5. Export and report.
  model.save(out, { dtype: "F16" });
  const lm = evaluatePerplexity(model, valTokens, evalOptions);
  const targets = evaluatedTargets(valTokens, evalOptions);
  const unigram = unigramPerplexity(trainTokens, targets, tokenizer.vocabSize);
  const unigramAll = unigramPerplexity(trainTokens, valTokens, tokenizer.vocabSize);
  const sample = greedySample(model, tokenizer, o.samplePrompt, o.sampleTokens);
  const tokensPerStep = batchSize * seqLen * o.gradAccum;
  const induction = await inductionTest(model, inductionOptions);
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
    induction: { length: induction.length, batch: induction.batch, first_copy_loss: induction.firstCopyLoss, second_copy_loss: induction.secondCopyLoss, uniform_loss: induction.uniformLoss, best_head: induction.best, heads: induction.heads },
    options: o,
  };
  writeFileAtomic(join(out, "report.json"), JSON.stringify(report, null, 2) + "\n");
  console.log(`val perplexity ${lm.perplexity.toFixed(1)} (unigram ${unigram.perplexity.toFixed(1)}) over ${lm.tokens} tokens`);
  console.log(`sample: ${JSON.stringify(o.samplePrompt)} → ${JSON.stringify(sample)}`);
  console.log(`induction ([BOS] + R + R, |R| = ${induction.length}): loss ${induction.firstCopyLoss.toFixed(2)} → ${induction.secondCopyLoss.toFixed(2)} nats on the second copy (ln V = ${induction.uniformLoss.toFixed(2)}); best head L${induction.best.layer}H${induction.best.head} ${induction.best.score.toFixed(3)}`);
  console.log(`wrote ${out} (config.json, model.safetensors, tokenizer.json, tokenizer_config.json, loss.svg, loss.csv, report.json)`);
  model.dispose();
  return 0;
}
