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
import { parseOptions, usage } from "../options.js";
import type { OptionSpecs } from "../options.js";

const SPECS: OptionSpecs = {
  text: { type: "string", help: "training text (documents separated by blank lines)" },
  valText: { type: "string", help: "held-out text for perplexity" },
  out: { type: "string", help: "output folder (HF model folder, loss.svg, loss.csv, report.json)" },
  tokenizer: { type: "string", help: "tokenizer.json (or its folder) to use instead of training one" },
  vocabSize: { type: "integer", default: 4096, help: "BPE vocabulary when training the tokenizer" },
  templateCopies: { type: "integer", default: 200, help: "copies of the ### Human/Assistant template mixed into the BPE corpus" },
  hiddenSize: { type: "integer", default: 256, help: "hidden_size" },
  numLayers: { type: "integer", default: 6, help: "num_hidden_layers" },
  numHeads: { type: "integer", default: 8, help: "num_attention_heads" },
  numKvHeads: { type: "integer", default: 8, help: "num_key_value_heads" },
  intermediateSize: { type: "integer", default: 704, help: "intermediate_size (SwiGLU width)" },
  maxPositions: { type: "integer", default: 512, help: "max_position_embeddings" },
  tieEmbeddings: { type: "boolean", default: true, help: "tie_word_embeddings" },
  steps: { type: "integer", default: 200, help: "optimisation steps" },
  batchSize: { type: "integer", default: 8, help: "windows per micro-batch" },
  seqLen: { type: "integer", default: 128, help: "tokens per window" },
  gradAccum: { type: "integer", default: 1, help: "micro-batches per step" },
  lr: { type: "number", default: 2e-3, help: "peak learning rate (warmup-linear schedule, spec §7)" },
  weightDecay: { type: "number", default: 0, help: "Adam weight decay" },
  clipNorm: { type: "number", default: 1, help: "gradient clipping (global norm)" },
  seed: { type: "integer", default: 0, help: "seed of the init and of the window draws" },
  checkpointDir: { type: "string", help: "checkpoint folder (default <out>/checkpoints)" },
  checkpointEvery: { type: "integer", default: 25, help: "save last.safetensors every n steps" },
  validateEvery: { type: "integer", default: 0, help: "held-out perplexity every n steps (0: only at the end)" },
  evalWindows: { type: "integer", default: 64, help: "held-out windows of seq_len tokens for perplexity (0: all)" },
  samplePrompt: { type: "string", default: "The President", help: "prompt of the greedy sample" },
  sampleTokens: { type: "integer", default: 48, help: "new tokens of the greedy sample" },
  resume: { type: "boolean", default: false, help: "continue from <checkpoint-dir>/last.safetensors" },
  backend: { type: "string", help: "tfjs backend (wasm, cpu, tensorflow)" },
  repeats: { type: "string", help: "insert verbatim repeats of earlier spans into windows, e.g. \"p=0.5,len=20-70,gap=0-40\" (copies=A-B: consecutive copies; random=F: that fraction of spans made of random token ids)" },
  engine: { type: "string", help: "gradient engine: ort (default when onnxruntime-node loads) or tfjs" },
  threads: { type: "integer", help: "ONNX Runtime threads (default: the number of cores)" },
};

const SUMMARY = "Trains a byte-level BPE tokenizer (unless --tokenizer) and a small Llama LM on plain text.";

function required(value: unknown, name: string): string {
  if (typeof value !== "string" || value === "") throw new Error(`--${name} is required (see pnpm train lm --help)`);
  return value;
}

function readDocuments(path: string): string[] {
  if (!existsSync(path)) throw new Error(`${path}: text file not found`);
  const docs = splitDocuments(readFileSync(path, "utf8"));
  if (docs.length === 0) throw new Error(`${path}: no text`);
  return docs;
}

export async function lmCommand(argv: string[]): Promise<number> {
  const { options: o, help } = parseOptions(argv, SPECS);
  if (help) {
    console.log(usage("lm", SUMMARY, SPECS));
    return 0;
  }
  const textPath = required(o.text, "text");
  const valPath = required(o.valText, "val-text");
  const out = resolve(required(o.out, "out"));
  const ckptDir = typeof o.checkpointDir === "string" ? o.checkpointDir : join(out, "checkpoints");
  const seqLen = o.seqLen as number;
  const batchSize = o.batchSize as number;
  mkdirSync(out, { recursive: true });
  const backend = await initBackend(o.backend as string | undefined);
  console.error(`backend ${backend}`);

  // 1. Tokenizer: given, reused from --out on resume, or trained on the training documents.
  const trainDocs = readDocuments(textPath);
  const valDocs = readDocuments(valPath);
  const tokPath = join(out, "tokenizer.json");
  const tokConfigPath = join(out, "tokenizer_config.json");
  if (typeof o.tokenizer === "string") {
    if (!existsSync(o.tokenizer)) throw new Error(`${o.tokenizer}: tokenizer not found`);
    const isDir = statSync(o.tokenizer).isDirectory();
    const file = isDir ? join(o.tokenizer, "tokenizer.json") : o.tokenizer;
    const config = join(isDir ? o.tokenizer : dirname(o.tokenizer), "tokenizer_config.json");
    if (!existsSync(file)) throw new Error(`${file}: tokenizer.json not found`);
    if (resolve(file) !== tokPath) copyFileSync(file, tokPath);
    if (existsSync(config) && resolve(config) !== tokConfigPath) copyFileSync(config, tokConfigPath);
  } else if (!(o.resume && existsSync(tokPath))) {
    const t0 = Date.now();
    const files = trainLmTokenizer(trainDocs, { vocabSize: o.vocabSize as number, templateCopies: o.templateCopies as number, maxLength: o.maxPositions as number });
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
    hidden_size: o.hiddenSize as number,
    intermediate_size: o.intermediateSize as number,
    num_hidden_layers: o.numLayers as number,
    num_attention_heads: o.numHeads as number,
    num_key_value_heads: o.numKvHeads as number,
    max_position_embeddings: o.maxPositions as number,
    tie_word_embeddings: o.tieEmbeddings as boolean,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    initializer_range: 0.02,
    bos_token_id: tokenizer.bosId ?? null,
    eos_token_id: tokenizer.eosId ?? null,
  };
  const { model, variables } = trainableLlama(modelConfig, o.seed as number);
  const params = parameterCount(variables);
  console.error(`model: ${params} parameters (${(params * 2 / 1e6).toFixed(1)} MB as F16)`);

  // 4. Train.
  const evalOptions = { seqLen, batchSize, maxWindows: (o.evalWindows as number) > 0 ? (o.evalWindows as number) : undefined };
  // random tokens of the induction test: not the 3 special ids, not the added "<Img>"/"</Img>" (the last ids)
  const inductionOptions = { bosId: tokenizer.bosId ?? 1, firstToken: 3, reservedTop: LM_ADDED_TOKENS.length };
  const validate = async () => {
    const r = evaluatePerplexity(model, valTokens, evalOptions);
    const ind = await inductionTest(model, inductionOptions);
    return { metric: r.meanLoss, val_loss: r.meanLoss, val_ppl: r.perplexity, induction_second_copy_loss: ind.secondCopyLoss, induction_best_head: ind.best.score };
  };
  const engine = (o.engine as string | undefined) ?? ((await ortAvailable()) ? "ort" : "tfjs");
  if (engine !== "ort" && engine !== "tfjs") throw new Error(`--engine should be ort or tfjs, got ${JSON.stringify(engine)}`);
  const ort = engine === "ort" ? await ortLmGradients(model, variables, { threads: o.threads as number | undefined }) : undefined;
  console.error(`gradient engine: ${engine === "ort" ? "onnxruntime" : `tfjs-${backend}`}`);
  const t0 = Date.now();
  let startStep: number | undefined;
  const result = await runTraining<TokenBatch>({
    variables,
    ...(ort ? { gradients: ort.gradients } : { loss: (batch: TokenBatch) => lmLoss(model, batch) }),
    metricsFile: join(out, "metrics.jsonl"),
    data: tokenWindowBatches(trainTokens, { batchSize, seqLen, repeats: typeof o.repeats === "string" ? parseRepeatOptions(o.repeats) : undefined, randomTokens: [inductionOptions.firstToken, tokenizer.vocabSize - inductionOptions.reservedTop] }),
    totalSteps: o.steps as number,
    seed: o.seed as number,
    optimizer: { lr: o.lr as number, weightDecay: o.weightDecay as number },
    clipNorm: o.clipNorm as number,
    accumulate: o.gradAccum as number,
    batchSize: batchSize * seqLen,
    checkpointDir: ckptDir,
    checkpointEvery: o.checkpointEvery as number,
    resume: o.resume as boolean,
    upgradeLegacy: legacyLlamaTensor,
    validate,
    validateEvery: o.validateEvery as number,
    lossPlot: join(out, "loss.svg"),
    onStep: (entry) => {
      startStep ??= entry.step - 1;
    },
    config: { model: modelConfig, batchSize, seqLen, gradAccum: o.gradAccum as number, lr: o.lr as number, seed: o.seed as number, steps: o.steps as number },
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
  const sample = greedySample(model, tokenizer, o.samplePrompt as string, o.sampleTokens as number);
  const tokensPerStep = batchSize * seqLen * (o.gradAccum as number);
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
