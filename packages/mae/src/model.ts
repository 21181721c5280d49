/**
 * ViTMAE (`ViTMAEForPreTraining`) in TensorFlow.js with Hugging Face parameter names.
 *
 * Stages, as in the MAE paper's code: embed → random masking → encoder → decoder → loss.
 * `encode` / `decode` are the LM4LV uses (spec §1): no masking, identity patch order,
 * CLS kept, decoder position embedding as stored (`encodeSync` / `decodeSync` inside `tf.tidy`
 * and gradients; `encode` / `decode` are the asynchronous `VisionModel` seam).
 */
import * as tf from "@tensorflow/tfjs";
import { mkdirSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { ParameterStore, writeFileAtomic, writeSafetensors } from "@lm4lv/core";
import type { RgbImage, SyncVisionModel, TensorToWrite } from "@lm4lv/core";
import { readViTMAEConfig, parseViTMAEConfig } from "./config.js";
import type { ViTMAEConfig } from "./config.js";
import { activation, gatherTokens, layerNorm, linear, patchify, postprocess, preprocessFiles, randomMasking, unpatchify } from "./ops.js";
import { initWeights, loadWeights } from "./weights.js";
import type { RawWeight } from "./weights.js";
import { maePretrainingLoss } from "./losses.js";

export interface ViTMAEForwardOptions {
  /** `[B, N]` sorting noise (smaller = kept first). Default: uniform random (seeded by `seed` when given). */
  noise?: tf.Tensor2D | ArrayLike<number>;
  /** Default: `config.mask_ratio`. */
  maskRatio?: number;
  /** Default: `config.norm_pix_loss`. */
  normPixLoss?: boolean;
  /** Also return the embeddings and the output of every encoder layer. */
  outputHiddenStates?: boolean;
  seed?: number;
}

export interface ViTMAEForwardOutput {
  /** `[B, 1 + lenKeep, hidden]` after the final LayerNorm; row 0 is CLS. */
  lastHiddenState: tf.Tensor3D;
  /** `[B, N]` int32. */
  idsRestore: tf.Tensor2D;
  /** `[B, N]` 1 = removed. */
  mask: tf.Tensor2D;
  /** `[B, N, p·p·C]` decoder predictions without CLS. */
  logits: tf.Tensor3D;
  /** Scalar: mean over removed patches of the per-patch MSE (NaN when nothing is removed, as HF). */
  loss: tf.Scalar;
  /** `[B, 1 + lenKeep, hidden]` × (layers + 1): embeddings, then each layer's output (before the final norm). */
  hiddenStates?: tf.Tensor3D[];
}

interface BlockShape {
  heads: number;
  act: (x: tf.Tensor) => tf.Tensor;
  eps: number;
}

/** What `save` writes: F32 (default) or F16 (`torch_dtype: "float16"` in config.json). */
export interface ViTMAESaveOptions {
  dtype?: "f32" | "f16";
}

export class ViTMAE implements SyncVisionModel {
  readonly config: ViTMAEConfig;
  /** Parameters by HF name (see `namedParameters`); every 2-D one is a Linear weight. */
  private readonly params: ParameterStore;
  private disposed = false;

  private constructor(config: ViTMAEConfig, raw: Map<string, RawWeight>) {
    this.config = config;
    this.params = new ParameterStore(
      "ViTMAE",
      [...raw].map(([name, w]) => ({ name, tensor: tf.tensor(w.data, w.shape, "float32"), linear: w.shape.length === 2 })),
    );
  }

  /** Loads `config.json` + `model.safetensors` (or a sharded index) from a folder; every tensor is checked. */
  static fromPretrained(dir: string, opts: { strict?: boolean } = {}): ViTMAE {
    if (!existsSync(dir)) throw new Error(`${dir}: no such folder`);
    if (!statSync(dir).isDirectory()) throw new Error(`${dir}: expected a model folder (config.json + model.safetensors)`);
    if (!existsSync(join(dir, "config.json"))) throw new Error(`${dir}: not a model folder (no config.json)`);
    const config = readViTMAEConfig(dir);
    return new ViTMAE(config, loadWeights(dir, config, opts));
  }

  /** A randomly initialised model (HF's init scheme, seeded). */
  static fromConfig(config: ViTMAEConfig | Record<string, unknown>, seed = 0): ViTMAE {
    const c = parseViTMAEConfig({ ...config } as Record<string, unknown>, "ViTMAE.fromConfig");
    return new ViTMAE(c, initWeights(c, seed));
  }

  /** Writes an HF folder: `config.json` and `model.safetensors` (HF names and layout; F32, or F16 with `dtype: "f16"`). */
  save(dir: string, opts: ViTMAESaveOptions = {}): void {
    const dtype = opts.dtype ?? "f32";
    if (dtype !== "f32" && dtype !== "f16") throw new Error(`ViTMAE.save: dtype must be "f32" or "f16", got "${dtype}"`);
    mkdirSync(dir, { recursive: true });
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of this.params.names()) {
      tensors[name] = { shape: this.params.shape(name), data: this.params.read(name), ...(dtype === "f16" ? { dtype: "F16" as const } : {}) };
    }
    writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
    const config = { architectures: ["ViTMAEForPreTraining"], model_type: "vit_mae", ...this.config, ...(dtype === "f16" ? { torch_dtype: "float16" } : {}) };
    writeFileAtomic(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  }

  // --- Parameters ------------------------------------------------------------------------------

  /**
   * Every parameter by its HF state-dict name (`vit.encoder.layer.0.attention.attention.query.weight`,
   * ...), in HF layout (Linear weights `[out, in]`) and checkpoint order. Trainable ones are the
   * `tf.Variable`s training updates. The tensors belong to the model: never dispose them. (The
   * model computes with frozen Linear weights transposed; the first call keeps an HF-layout copy.)
   */
  namedParameters(): Map<string, tf.Tensor> {
    return this.params.namedParameters();
  }

  /**
   * One parameter as `namedParameters()` gives it (HF name, HF layout), copied to the host;
   * nothing is kept (for export and graph building without an HF-layout copy of every weight).
   */
  readParameter(name: string): { shape: number[]; data: Float32Array } {
    return { shape: this.params.shape(name), data: this.params.read(name) };
  }

  /**
   * Makes the parameters whose names `select` accepts trainable: each becomes a `tf.Variable` in
   * HF layout that the model computes with from then on (e.g. `(n) => n.startsWith("decoder.")`
   * for spec §6 fine-tuning). Returns them by name; the others stay frozen.
   */
  trainableParameters(select: (name: string) => boolean): Record<string, tf.Variable> {
    return this.params.trainable(select);
  }

  // --- VisionModel -------------------------------------------------------------------------

  get imageSize(): number { return this.config.image_size; }
  get patchSize(): number { return this.config.patch_size; }
  get hiddenSize(): number { return this.config.hidden_size; }
  get numPatches(): number { return (this.config.image_size / this.config.patch_size) ** 2; }
  get numTokens(): number { return 1 + this.numPatches; }

  /** `[B, 3, H, W]` normalised → `[B, 1+N, hidden]`: no masking, identity order, CLS kept, final LayerNorm. */
  async encode(pixelValues: tf.Tensor4D): Promise<tf.Tensor3D> {
    return this.encodeSync(pixelValues);
  }

  /** `[B, 1+N, hidden]` (identity order) → `[B, 3, H, W]` normalised reconstruction. */
  async decode(features: tf.Tensor3D): Promise<tf.Tensor4D> {
    return this.decodeSync(features);
  }

  /** `encode`, synchronously (differentiable; usable inside `tf.tidy`). */
  encodeSync(pixelValues: tf.Tensor4D): tf.Tensor3D {
    this.checkAlive();
    return tf.tidy(() => {
      const patches = this.embedPatches(pixelValues); // [B, N, D]
      const x = this.prependCls(patches); // [B, 1+N, D]
      return this.runEncoder(x).last;
    });
  }

  /** `decode`, synchronously (differentiable; usable inside `tf.tidy`). */
  decodeSync(features: tf.Tensor3D): tf.Tensor4D {
    this.checkAlive();
    if (features.shape[1] !== this.numTokens || features.shape[2] !== this.hiddenSize) {
      throw new Error(`ViTMAE.decode: features have shape [${features.shape}], expected [B, ${this.numTokens}, ${this.hiddenSize}]`);
    }
    return tf.tidy(() => {
      const logits = this.runDecoder(features); // [B, N, p·p·C]
      return unpatchify(logits, this.patchSize, this.config.num_channels);
    });
  }

  // --- Pre-training forward (HF ViTMAEForPreTraining.forward) --------------------------------

  forward(pixelValues: tf.Tensor4D, opts: ViTMAEForwardOptions = {}): ViTMAEForwardOutput {
    this.checkAlive();
    const maskRatio = opts.maskRatio ?? this.config.mask_ratio;
    const normPix = opts.normPixLoss ?? this.config.norm_pix_loss;
    const b = pixelValues.shape[0];
    const n = this.numPatches;
    const noise = opts.noise ?? tf.randomUniform([b, n], 0, 1, "float32", opts.seed);
    try {
      const patches = this.embedPatches(pixelValues); // [B, N, D]
      const { kept, mask, idsRestore } = randomMasking(patches, noise, maskRatio); // [B, K, D], [B, N], [B, N]
      patches.dispose();
      const out = tf.tidy(() => {
        const x = this.prependCls(kept); // [B, 1+K, D]
        const enc = this.runEncoder(x, opts.outputHiddenStates ?? false);
        const logits = this.runDecoder(enc.last, idsRestore); // [B, N, p·p·C]
        const target = patchify(pixelValues, this.patchSize); // [B, N, p·p·C]
        const loss = maePretrainingLoss(logits, target, mask, { normPixLoss: normPix });
        return { lastHiddenState: enc.last, logits, loss, hiddenStates: enc.all };
      });
      kept.dispose();
      const result: ViTMAEForwardOutput = { lastHiddenState: out.lastHiddenState, idsRestore, mask, logits: out.logits, loss: out.loss };
      if (out.hiddenStates) result.hiddenStates = out.hiddenStates;
      return result;
    } finally {
      if (!opts.noise) (noise as tf.Tensor).dispose();
    }
  }

  // --- Images in, images out -----------------------------------------------------------------

  /** Normalised `[B, 3, H, W]` → de-normalised, clamped images. */
  postprocess(pixelValues: tf.Tensor4D): RgbImage[] {
    return postprocess(pixelValues);
  }

  /** Image files → MAE reconstruction (encode without masking, decode), `image_size` square, clamped. */
  async reconstruct(imagePaths: string[], opts: { batchSize?: number } = {}): Promise<RgbImage[]> {
    this.checkAlive();
    const batch = opts.batchSize ?? 8;
    const out: RgbImage[] = [];
    for (let i = 0; i < imagePaths.length; i += batch) {
      const pixels = await preprocessFiles(imagePaths.slice(i, i + batch), this.imageSize); // [b, 3, S, S]
      const recon = tf.tidy(() => {
        const feats = this.encodeSync(pixels); // [b, 1+N, D]
        return this.decodeSync(feats); // [b, 3, S, S]
      });
      out.push(...this.postprocess(recon));
      pixels.dispose();
      recon.dispose();
    }
    return out;
  }

  /** Number of parameters (all, or of the encoder / decoder part). */
  parameterCount(part: "all" | "encoder" | "decoder" = "all"): number {
    return this.params.count((name) => part === "all" || (part === "encoder") === name.startsWith("vit."));
  }

  dispose(): void {
    this.params.dispose();
    this.disposed = true;
  }

  // --- Internals, in forward order -----------------------------------------------------------

  /** A parameter that is not a Linear weight. */
  private w(name: string): tf.Tensor {
    return this.params.get(name);
  }

  /** `x [..., in] → [..., out]` with the Linear `<prefix>.weight` (and its bias when the model has one). */
  private linear(x: tf.Tensor, prefix: string): tf.Tensor {
    const bias = this.params.has(`${prefix}.bias`) ? this.params.get(`${prefix}.bias`) : undefined;
    return linear(x, this.params.kernel(`${prefix}.weight`), bias);
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error("ViTMAE: model was disposed");
  }

  /** Conv patch embedding as a matmul over patchified pixels, plus the patch position embedding. */
  private embedPatches(pixelValues: tf.Tensor4D): tf.Tensor3D {
    const { image_size: s, num_channels: c, patch_size: p, hidden_size: d } = this.config;
    const [, pc, h, w] = pixelValues.shape;
    if (pc !== c || h !== s || w !== s) {
      throw new Error(`ViTMAE: pixel values have shape [${pixelValues.shape}], expected [B, ${c}, ${s}, ${s}]`);
    }
    return tf.tidy(() => {
      const patches = patchify(pixelValues, p); // [B, N, p·q·C]
      // conv weight [D, C, p, q] → [p, q, C, D] → [p·q·C, D] to match the patch vector order
      const wConv = tf.reshape(tf.transpose(this.w("vit.embeddings.patch_embeddings.projection.weight"), [2, 3, 1, 0]), [p * p * c, d]);
      const x = linear(patches, wConv, this.w("vit.embeddings.patch_embeddings.projection.bias")); // [B, N, D]
      const pos = tf.slice(this.w("vit.embeddings.position_embeddings"), [0, 1, 0], [1, -1, d]); // [1, N, D]
      return tf.add(x, pos) as tf.Tensor3D;
    });
  }

  /** `[B, T, D]` → `[B, 1+T, D]` with CLS (+ its position embedding) in front. */
  private prependCls(x: tf.Tensor3D): tf.Tensor3D {
    const d = this.config.hidden_size;
    return tf.tidy(() => {
      const pos0 = tf.slice(this.w("vit.embeddings.position_embeddings"), [0, 0, 0], [1, 1, d]); // [1, 1, D]
      const cls = tf.tile(tf.add(this.w("vit.embeddings.cls_token"), pos0), [x.shape[0], 1, 1]); // [B, 1, D]
      return tf.concat([cls, x], 1) as tf.Tensor3D;
    });
  }

  private encoderShape(): BlockShape {
    return { heads: this.config.num_attention_heads, act: activation(this.config.hidden_act), eps: this.config.layer_norm_eps };
  }

  private decoderShape(): BlockShape {
    return { heads: this.config.decoder_num_attention_heads, act: activation(this.config.hidden_act), eps: this.config.layer_norm_eps };
  }

  /** Encoder blocks then the final LayerNorm. */
  private runEncoder(x: tf.Tensor3D, keepAll = false): { last: tf.Tensor3D; all?: tf.Tensor3D[] } {
    const shape = this.encoderShape();
    const all: tf.Tensor3D[] | undefined = keepAll ? [x] : undefined;
    let h = x; // [B, T, D]
    for (let i = 0; i < this.config.num_hidden_layers; i++) {
      h = this.block(h, `vit.encoder.layer.${i}`, shape);
      all?.push(h);
    }
    const last = layerNorm(h, this.w("vit.layernorm.weight"), this.w("vit.layernorm.bias"), shape.eps) as tf.Tensor3D; // [B, T, D]
    return { last, all };
  }

  /**
   * Decoder: `[B, 1+K, D]` latent → `[B, N, p·p·C]` predictions (CLS dropped). With
   * `idsRestore`, removed positions get the mask token and the patch order is restored;
   * without it the latent must hold all N patches in order.
   */
  private runDecoder(latent: tf.Tensor3D, idsRestore?: tf.Tensor2D): tf.Tensor3D {
    const shape = this.decoderShape();
    const n = this.numPatches;
    return tf.tidy(() => {
      let x = this.linear(latent, "decoder.decoder_embed") as tf.Tensor3D; // [B, 1+K, Dd]
      const [b, t, dd] = x.shape;
      if (idsRestore) {
        const cls = tf.slice(x, [0, 0, 0], [b, 1, dd]); // [B, 1, Dd]
        let tokens: tf.Tensor = tf.slice(x, [0, 1, 0], [b, t - 1, dd]); // [B, K, Dd]
        if (t - 1 < n) {
          const maskTokens = tf.tile(this.w("decoder.mask_token"), [b, n - (t - 1), 1]); // [B, N−K, Dd]
          tokens = tf.concat([tokens, maskTokens], 1); // [B, N, Dd] shuffled order
        }
        tokens = gatherTokens(tokens as tf.Tensor3D, idsRestore); // [B, N, Dd] patch order
        x = tf.concat([cls, tokens], 1) as tf.Tensor3D; // [B, 1+N, Dd]
      } else if (t !== n + 1) {
        throw new Error(`ViTMAE decoder: got ${t} tokens, expected ${n + 1} (CLS + all patches) when no idsRestore is given`);
      }
      let h = tf.add(x, this.w("decoder.decoder_pos_embed")) as tf.Tensor3D; // [B, 1+N, Dd]
      for (let i = 0; i < this.config.decoder_num_hidden_layers; i++) h = this.block(h, `decoder.decoder_layers.${i}`, shape);
      h = layerNorm(h, this.w("decoder.decoder_norm.weight"), this.w("decoder.decoder_norm.bias"), shape.eps) as tf.Tensor3D;
      const pred = this.linear(h, "decoder.decoder_pred"); // [B, 1+N, p·p·C]
      return tf.slice(pred, [0, 1, 0], [b, n, -1]) as tf.Tensor3D; // [B, N, p·p·C]
    });
  }

  /** Pre-LN transformer block (HF ViTMAELayer): x + attn(LN(x)); h + MLP(LN(h)). */
  private block(x: tf.Tensor3D, prefix: string, shape: BlockShape): tf.Tensor3D {
    return tf.tidy(() => {
      const normed = layerNorm(x, this.w(`${prefix}.layernorm_before.weight`), this.w(`${prefix}.layernorm_before.bias`), shape.eps);
      const h = tf.add(x, this.attention(normed as tf.Tensor3D, prefix, shape.heads)) as tf.Tensor3D; // [B, T, D]
      const normed2 = layerNorm(h, this.w(`${prefix}.layernorm_after.weight`), this.w(`${prefix}.layernorm_after.bias`), shape.eps);
      const up = shape.act(this.linear(normed2, `${prefix}.intermediate.dense`)); // [B, T, mlp]
      const down = this.linear(up, `${prefix}.output.dense`); // [B, T, D]
      return tf.add(h, down) as tf.Tensor3D;
    });
  }

  /** Multi-head self-attention without a mask: `[B, T, D]` → `[B, T, D]`. */
  private attention(x: tf.Tensor3D, prefix: string, heads: number): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, t, d] = x.shape;
      const hd = d / heads;
      const proj = (name: string) => {
        const y = this.linear(x, `${prefix}.attention.attention.${name}`); // [B, T, D]
        return tf.transpose(tf.reshape(y, [b, t, heads, hd]), [0, 2, 1, 3]); // [B, H, T, hd]
      };
      const q = proj("query");
      const k = proj("key");
      const v = proj("value");
      const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)); // [B, H, T, T]
      const probs = tf.softmax(scores, -1);
      const ctx = tf.matMul(probs, v); // [B, H, T, hd]
      const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [b, t, d]); // [B, T, D]
      return this.linear(merged, `${prefix}.attention.output.dense`) as tf.Tensor3D;
    });
  }
}
