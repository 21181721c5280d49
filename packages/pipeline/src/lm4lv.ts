/**
 * LM4LV composed (spec §1–§5): frozen MAE encoder/decoder + frozen causal LM + tokenizer,
 * joined by the trained adapters and task tokens.
 *
 *   training:   MAE(LQ), MAE(HQ) → adapter → [prompt | LQ | task | "<Img>" HQ "</Img>"] → LM → CE + MSE
 *   restoring:  MAE(LQ) → adapter → prompt + "<Img>" → LM writes 1+N features (KV cache) → de-adapter → MAE decoder
 *
 * Depends only on the interfaces of @lm4lv/core for the models (`VisionModel`, `CausalLM`, both
 * asynchronous), so an ONNX Runtime engine can stand in for the tfjs one at inference. Training on
 * tfjs (`loss`, `encodeSync`) needs the tfjs models (`SyncVisionModel`, `SyncCausalLM`).
 */
import * as tf from "@tensorflow/tfjs";
import { existsSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { isSyncCausalLM, isSyncVisionModel, joinTiles, resizeImage, splitTiles, type CausalLM, type CausalLMOutput, type RgbImage, type SyncCausalLM, type SyncVisionModel, type VisionModel } from "@lm4lv/core";
import { ViTMAE, preprocessImages, postprocess } from "@lm4lv/mae";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { Tokenizer, buildSequence, buildGenerationPrompt, type BuiltSequence, type GenerationPrompt } from "@lm4lv/tokenizer";
import {
  LM4LVAdapters,
  assembleInputsEmbeds,
  lm4lvForwardLoss,
  loadAdapters,
  readCheckpointInfo,
  resolveModelReferences,
  saveAdapters,
  type AdapterDtype,
  type CheckpointInfo,
  type ResolveModelsOptions,
  type LossValues,
  type TrainingSample,
} from "@lm4lv/adapters";
import { generateVisualTokens, type VisualAdapters } from "@lm4lv/sampler";
import { PAIR_CONVERSATION, PAIR_TASK_TYPE } from "@lm4lv/data";

/** The three frozen parts. */
export interface LM4LVModels {
  vision: VisionModel;
  lm: CausalLM;
  tokenizer: Tokenizer;
  /** Where they were loaded from (stored in checkpoints). */
  visionDir: string;
  llmDir: string;
  tokenizerDir: string;
}

export interface LoadModelsOptions {
  /** HF `ViTMAEForPreTraining` folder. */
  mae: string;
  /** HF `LlamaForCausalLM` folder. */
  llm: string;
  /** Folder with tokenizer.json (default: the LLM folder). */
  tokenizer?: string;
}

/** Loads the frozen MAE, LM and tokenizer (tfjs engine). */
export async function loadModels(opts: LoadModelsOptions): Promise<LM4LVModels> {
  for (const [what, dir] of [["MAE", opts.mae], ["LLM", opts.llm]] as const) {
    if (!existsSync(dir)) throw new Error(`${what} folder not found: ${dir}`);
  }
  const vision = ViTMAE.fromPretrained(opts.mae);
  const lm = LlamaForCausalLM.fromPretrained(opts.llm);
  const tokenizer = await Tokenizer.fromPretrained(opts.tokenizer ?? opts.llm);
  if (tokenizer.vocabSize > lm.vocabSize) {
    throw new Error(`tokenizer in ${opts.tokenizer ?? opts.llm} has ${tokenizer.vocabSize} tokens but the LLM in ${opts.llm} only ${lm.vocabSize} embeddings`);
  }
  return { vision, lm, tokenizer, visionDir: resolve(opts.mae), llmDir: resolve(opts.llm), tokenizerDir: resolve(opts.tokenizer ?? opts.llm) };
}

/** The task conversation of a (LQ → HQ) pair, as in the reference data. */
export function pairConversation() {
  return { image: ["lq", "hq"], conversations: PAIR_CONVERSATION.map((t) => ({ ...t })), task_type: PAIR_TASK_TYPE as "conversation" };
}

/**
 * What an inference engine may replace (ONNX Runtime's: `withOrtEngine` / `loadOrtLM4LV` of
 * @lm4lv/onnx); training takes its engine as `trainLM4LV`'s `gradients` instead.
 */
export interface GenerationEngine {
  /** Encoder/decoder used by encode/decode/restore. */
  vision?: VisionModel;
  /** LM used for the generation loop (with the tfjs adapters) when no `generate` is given. */
  lm?: CausalLM;
  adapters?: VisualAdapters;
  /** A whole visual loop: prompt embeddings `[1, T, Dl]` → features `[1, n, Dv]`. */
  generate?: (promptEmbeds: tf.Tensor3D, numTokens: number) => Promise<tf.Tensor3D>;
  /** Name shown to users, e.g. "onnxruntime". */
  name?: string;
  dispose?: () => void;
}

export interface RestoreResult {
  /** The restored image, `imageSize`², clamped [0,1]. */
  image: RgbImage;
  /** `[tiles², 1+N, Dv]` features written by the LM, one row per tile (`[1, 1+N, Dv]` untiled; caller disposes). */
  features: tf.Tensor3D;
}

export class LM4LV {
  readonly task: string;
  private trainingLayout?: BuiltSequence;
  private promptLayout?: GenerationPrompt;

  constructor(
    readonly models: LM4LVModels,
    readonly adapters: LM4LVAdapters,
    task = "denoise",
    /** Engines other than tfjs may replace the vision model and the generation loop at inference. */
    private readonly generation: GenerationEngine = {},
    /**
     * Tiles per side: an image is restored as a `tiles` × `tiles` grid of MAE-size tiles, one LM
     * sequence each (1: the paper's one sequence per image). Outside the paper's recipe; it lets an
     * MAE of small tiles keep the LM's sequence length while each token stands for fewer pixels.
     */
    readonly tiles = 1,
  ) {
    if (!Number.isInteger(tiles) || tiles < 1) throw new Error(`LM4LV: tiles must be a positive integer, got ${tiles}`);
    this.task = task;
    const { vision, lm } = models;
    if (adapters.visionHidden !== vision.hiddenSize) {
      throw new Error(`adapters expect vision width ${adapters.visionHidden}, the MAE has ${vision.hiddenSize}`);
    }
    if (adapters.llmHidden !== lm.hiddenSize) throw new Error(`adapters expect LLM width ${adapters.llmHidden}, the LLM has ${lm.hiddenSize}`);
  }

  /** Fresh adapters (PyTorch init, zero task tokens) over loaded models. */
  static create(models: LM4LVModels, opts: { task?: string; seed?: number; tiles?: number } = {}): LM4LV {
    const adapters = new LM4LVAdapters({ visionHidden: models.vision.hiddenSize, llmHidden: models.lm.hiddenSize, seed: opts.seed ?? 0 });
    return new LM4LV(models, adapters, opts.task ?? "denoise", {}, opts.tiles ?? 1);
  }

  /**
   * Loads a trained checkpoint folder (adapters.safetensors + lm4lv.json). The model folders are the
   * ones given (`mae`, `llm`, `tokenizer`), else lm4lv.json's references resolved relative to the
   * checkpoint, else found by name in `modelDirs` (default: the repository's embedded models), so a
   * copied checkpoint folder still loads; see @lm4lv/adapters' resolveModelReferences.
   */
  static async fromCheckpoint(dir: string, opts: ResolveModelsOptions = {}): Promise<LM4LV> {
    const info = readCheckpointInfo(dir);
    const models = await loadModels(resolveModelReferences(dir, info, opts));
    return LM4LV.fromCheckpointWithModels(dir, models, info);
  }

  /** Loads adapters from `dir` for already loaded models (checks the widths and token count). */
  static fromCheckpointWithModels(dir: string, models: LM4LVModels, info = readCheckpointInfo(dir)): LM4LV {
    if (info.numVisualTokens !== models.vision.numTokens) {
      throw new Error(`${dir}: checkpoint was trained with ${info.numVisualTokens} visual tokens per image, the MAE gives ${models.vision.numTokens}`);
    }
    const { adapters } = loadAdapters(dir, { visionHidden: models.vision.hiddenSize, llmHidden: models.lm.hiddenSize });
    return new LM4LV(models, adapters, info.task, {}, info.tiles);
  }

  /** Saves adapters + lm4lv.json; model folders are stored relative to `dir`; `dtype` F16 halves the file (for shipping). */
  save(dir: string, step: number, extra: Record<string, unknown> = {}, dtype: AdapterDtype = "F32"): CheckpointInfo {
    const rel = (p: string) => relative(resolve(dir), p) || ".";
    return saveAdapters(dir, this.adapters, {
      visionModel: rel(this.models.visionDir),
      llm: rel(this.models.llmDir),
      task: this.task,
      numVisualTokens: this.numVisualTokens,
      tiles: this.tiles,
      step,
      extra: { tokenizer: rel(this.models.tokenizerDir), ...extra },
    }, { dtype });
  }

  /** The side of the images it restores: `tiles` × the MAE's input size. */
  get imageSize(): number {
    return this.tiles * this.tileSize;
  }

  /** The MAE's input size: the side of one tile (of the whole image when `tiles` is 1). */
  get tileSize(): number {
    return this.models.vision.imageSize;
  }

  /** Visual tokens per LM sequence (per tile). */
  get numVisualTokens(): number {
    return this.models.vision.numTokens;
  }

  /** Resizes (bicubic) to `imageSize` when needed. */
  async fit(img: RgbImage): Promise<RgbImage> {
    const s = this.imageSize;
    return img.width === s && img.height === s ? img : resizeImage(img, s, s);
  }

  /** An image of `imageSize`² → its `tiles`² tiles of the MAE's size, row by row (`[img]` untiled). */
  split(img: RgbImage): RgbImage[] {
    if (img.width !== this.imageSize || img.height !== this.imageSize) {
      throw new Error(`image is ${img.width}×${img.height}, this LM4LV restores ${this.imageSize}×${this.imageSize} (resize first, e.g. with fit())`);
    }
    return splitTiles(img, this.tiles);
  }

  /** Training pairs of `imageSize`² → pairs of tiles (tile k of the input with tile k of the target). */
  splitPairs<P extends { lq: RgbImage; hq: RgbImage }>(pairs: readonly P[]): { lq: RgbImage; hq: RgbImage }[] {
    return pairs.flatMap((p) => {
      const hq = this.split(p.hq);
      return this.split(p.lq).map((lq, k) => ({ lq, hq: hq[k] }));
    });
  }

  private checkSizes(images: RgbImage[]): void {
    for (const im of images) {
      if (im.width !== this.tileSize || im.height !== this.tileSize) {
        throw new Error(`image is ${im.width}×${im.height}, the MAE expects ${this.tileSize}×${this.tileSize} (resize first, e.g. with fit(), and cut tiles with split())`);
      }
    }
  }

  /** Images (already the MAE's size, `tileSize`²) → raw MAE features `[B, 1+N, Dv]` (spec §1, CLS kept). */
  async encode(images: RgbImage[]): Promise<tf.Tensor3D> {
    this.checkSizes(images);
    const vision = this.generation.vision ?? this.models.vision;
    const pixels = preprocessImages(images);
    try {
      return await vision.encode(pixels);
    } finally {
      pixels.dispose();
    }
  }

  /** `encode` on the tfjs MAE, synchronously: inside `tf.tidy` and gradients (training on tfjs). */
  encodeSync(images: RgbImage[]): tf.Tensor3D {
    this.checkSizes(images);
    const vision = this.tfjsVision();
    return tf.tidy(() => vision.encodeSync(preprocessImages(images)));
  }

  /** Features `[B, 1+N, Dv]` → images through the frozen decoder (de-normalised, clamped). */
  async decode(features: tf.Tensor3D): Promise<RgbImage[]> {
    const px = await (this.generation.vision ?? this.models.vision).decode(features);
    try {
      return postprocess(px);
    } finally {
      px.dispose();
    }
  }

  /** The MAE's own reconstruction of images of `imageSize`², tile by tile (the "MAE(LQ)" baseline of spec §9). */
  async reconstruct(images: RgbImage[]): Promise<RgbImage[]> {
    const f = await this.encode(images.flatMap((im) => this.split(im)));
    let tiles: RgbImage[];
    try {
      tiles = await this.decode(f);
    } finally {
      f.dispose();
    }
    const g = this.tiles * this.tiles;
    return images.map((_, i) => joinTiles(tiles.slice(i * g, (i + 1) * g), this.tiles));
  }

  /** The tfjs MAE (training and `encodeSync` need its synchronous methods). */
  private tfjsVision(): SyncVisionModel {
    const { vision } = this.models;
    if (!isSyncVisionModel(vision)) throw new Error("this LM4LV's MAE has no synchronous (tfjs) encoder: training on tfjs needs the models of loadModels");
    return vision;
  }

  /** The tfjs LM (the tfjs training loss differentiates through its synchronous forward). */
  private tfjsLM(): SyncCausalLM {
    const { lm } = this.models;
    if (!isSyncCausalLM(lm)) throw new Error("this LM4LV's LM has no synchronous (tfjs) forward: training on tfjs needs the models of loadModels");
    return lm;
  }

  /** The (fixed) training layout of a pair sample: ids, labels, spans, vision targets. */
  layout(): BuiltSequence {
    this.trainingLayout ??= buildSequence(this.models.tokenizer, pairConversation(), { numVisualTokens: this.numVisualTokens, numTaskTokens: this.adapters.numTaskTokens });
    return this.trainingLayout;
  }

  /** The generation prompt: the human turn with the LQ image, then "### Assistant: <Img>". */
  prompt(): GenerationPrompt {
    this.promptLayout ??= buildGenerationPrompt(this.models.tokenizer, pairConversation(), { numVisualTokens: this.numVisualTokens, numTaskTokens: this.adapters.numTaskTokens });
    return this.promptLayout;
  }

  /** Training samples of a batch of pairs; `features` is `[2B, 1+N, Dv]` (LQ rows then HQ rows). */
  samples(features: tf.Tensor3D, batch: number): TrainingSample[] {
    const seq = this.layout();
    const [, N, D] = features.shape;
    return Array.from({ length: batch }, (_, b) => ({
      seq,
      imageFeatures: [
        features.slice([b, 0, 0], [1, N, D]).reshape([N, D]) as tf.Tensor2D,
        features.slice([batch + b, 0, 0], [1, N, D]).reshape([N, D]) as tf.Tensor2D,
      ],
    }));
  }

  /**
   * The §4 loss of a batch of (LQ, HQ) pairs at the MAE's size (`tileSize`²; a tiled model's pairs of tiles, see
   * `splitPairs`): {loss, ce, mse}; synchronous
   * and differentiable on the tfjs models (call it inside `tf.variableGrads`).
   */
  loss(pairs: readonly { lq: RgbImage; hq: RgbImage }[]): LossValues {
    const lm = this.tfjsLM();
    return tf.tidy(() => {
      const feats = this.encodeSync([...pairs.map((p) => p.lq), ...pairs.map((p) => p.hq)]); // [2B, 1+N, Dv]
      return lm4lvForwardLoss(lm, this.adapters, this.samples(feats, pairs.length)) as unknown as tf.TensorContainerObject;
    }) as unknown as LossValues;
  }

  /**
   * Spec §5: the LM writes the restored image's 1+N features autoregressively; decoded by the MAE.
   * `releaseEncoder`: free the vision model's encoder (when it can) before the LM runs, for a lower
   * peak memory with large models; the next `encode` reloads it. With `tiles` > 1 every tile is
   * restored on its own (one sequence each) and the tiles are put back together.
   */
  async restore(lq: RgbImage, opts: { useCache?: boolean; releaseEncoder?: boolean } = {}): Promise<RestoreResult> {
    const tiles = this.split(await this.fit(lq));
    const done: RestoreResult[] = [];
    try {
      for (const tile of tiles) done.push(await this.restoreTile(tile, opts)); // one LM sequence per tile
    } catch (e) {
      tf.dispose(done.map((r) => r.features));
      throw e;
    }
    if (done.length === 1) return done[0];
    const features = tf.concat(done.map((r) => r.features), 0) as tf.Tensor3D; // [tiles², 1+N, Dv]
    tf.dispose(done.map((r) => r.features));
    return { image: joinTiles(done.map((r) => r.image), this.tiles), features };
  }

  /** Spec §5 on one image of the MAE's size. */
  private async restoreTile(img: RgbImage, opts: { useCache?: boolean; releaseEncoder?: boolean }): Promise<RestoreResult> {
    const lm = this.generation.lm ?? this.models.lm;
    const adapters = this.generation.adapters ?? this.adapters;
    const lqFeat = await this.encode([img]); // [1, 1+N, Dv]
    if (opts.releaseEncoder) await (this.generation.vision ?? this.models.vision).releaseEncoder?.();
    let promptEmbeds: tf.Tensor3D;
    try {
      promptEmbeds = await assembleInputsEmbeds(this.models.lm, this.prompt(), [lqFeat], this.adapters); // [1, T, Dl]
    } finally {
      lqFeat.dispose();
    }
    let features: tf.Tensor3D; // [1, 1+N, Dv]
    try {
      features = this.generation.generate
        ? await this.generation.generate(promptEmbeds, this.numVisualTokens)
        : await generateVisualTokens({ lm, adapters, promptEmbeds, numTokens: this.numVisualTokens, useCache: opts.useCache ?? true });
    } finally {
      promptEmbeds.dispose();
    }
    try {
      const [image] = await this.decode(features);
      return { image, features };
    } catch (e) {
      features.dispose();
      throw e;
    }
  }

  /**
   * Diagnostic: the image the LM predicts when it is fed the TRUE clean features (teacher forcing, as
   * in training) instead of its own previous outputs. The gap to `restore` measures how far free-running
   * generation drifts (exposure bias).
   */
  async teacherForced(lq: RgbImage, hq: RgbImage): Promise<RgbImage> {
    const hqTiles = this.split(await this.fit(hq));
    const out: RgbImage[] = [];
    for (const [k, lqTile] of this.split(await this.fit(lq)).entries()) out.push(await this.teacherForcedTile(lqTile, hqTiles[k]));
    return joinTiles(out, this.tiles);
  }

  /** `teacherForced` on one pair of the MAE's size. */
  private async teacherForcedTile(lq: RgbImage, hq: RgbImage): Promise<RgbImage> {
    const seq = this.layout();
    const feats = await this.encode([lq, hq]); // [2, 1+N, Dv]: images 0 and 1 of the layout
    let embeds: tf.Tensor3D;
    try {
      embeds = await assembleInputsEmbeds(this.models.lm, seq, feats, this.adapters); // [1, T, Dl]
    } finally {
      feats.dispose();
    }
    let out: CausalLMOutput;
    try {
      out = await this.models.lm.forward({ inputsEmbeds: embeds });
    } finally {
      embeds.dispose();
    }
    const pred = tf.tidy(() => {
      const positions = tf.tensor1d(seq.visionTargets.map((t) => t.position), "int32");
      const h = tf.gather(out.lastHiddenState.squeeze([0]), positions).expandDims(0) as tf.Tensor3D; // [1, 1+N, Dl]
      return this.adapters.deAdapt(h); // [1, 1+N, Dv]
    });
    tf.dispose([out.lastHiddenState, out.logits]);
    try {
      return (await this.decode(pred))[0];
    } finally {
      pred.dispose();
    }
  }

  /** A copy that runs inference on another engine (e.g. ONNX Runtime, @lm4lv/onnx). */
  withGenerationEngine(engine: GenerationEngine): LM4LV {
    return new LM4LV(this.models, this.adapters, this.task, engine, this.tiles);
  }

  /** "tfjs" or the engine's name. */
  get engineName(): string {
    return this.generation.name ?? "tfjs";
  }
}

/** The input and the output image spans of the model's LM4LV layout (output token k sits `out.start − in.start` after input token k). */
export function lm4lvImageSpans(model: LM4LV): [{ start: number; length: number }, { start: number; length: number }] {
  const images = model.layout().spans.filter((s) => s.kind === "image").sort((a, b) => a.start - b.start);
  if (images.length !== 2) throw new Error(`the LM4LV layout has ${images.length} image spans, expected 2`);
  return [images[0], images[1]];
}

/** Resolves a checkpoint argument: a folder holding lm4lv.json. */
export function checkpointDir(path: string): string {
  const dir = path.endsWith("lm4lv.json") ? dirname(path) : path;
  if (!existsSync(resolve(dir, "lm4lv.json"))) throw new Error(`${path}: not an LM4LV checkpoint (no lm4lv.json)`);
  return dir;
}
