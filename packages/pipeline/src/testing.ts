/**
 * Test helpers (the `@lm4lv/pipeline/testing` subpath): tiny random models saved as HF folders,
 * a byte-level BPE tokenizer trained on a few sentences, and small synthetic photos.
 * Real implementations throughout — only the sizes are small.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeImage, type RgbImage } from "@lm4lv/core";
import { ViTMAE, vitMAEPreset } from "@lm4lv/mae";
import { LlamaForCausalLM, llamaPreset } from "@lm4lv/llm";
import { trainBpe } from "@lm4lv/tokenizer";

const TEXT = [
  "The quick brown fox jumps over the lazy dog.",
  "A frozen language model reads and writes the features of a vision model.",
  "### Human: <Img></Img> \n### Assistant: <Img></Img>\n###",
  "Noise, blur, rain and missing regions are restored by two small adapters.",
];

export interface TinyModels {
  maeDir: string;
  llmDir: string;
}

/**
 * Writes `<dir>/mae` (image `imageSize`, patch 4, width 24) and `<dir>/llm` (byte-level BPE of
 * ~300 ids + a 2-layer Llama of width 32 with that vocabulary) as Hugging Face folders.
 */
export function writeTinyModels(dir: string, opts: { imageSize?: number; seed?: number } = {}): TinyModels {
  const imageSize = opts.imageSize ?? 16;
  const seed = opts.seed ?? 0;
  const maeDir = join(dir, "mae");
  const llmDir = join(dir, "llm");
  mkdirSync(llmDir, { recursive: true });
  const tokJson = trainBpe([...TEXT, ...Array(20).fill(TEXT[2])], { vocabSize: 300, minFrequency: 1, addedTokens: ["<Img>", "</Img>"] });
  writeFileSync(join(llmDir, "tokenizer.json"), JSON.stringify(tokJson));
  const vocab = Object.keys((tokJson as { model: { vocab: Record<string, number> } }).model.vocab).length + 2;
  const mae = ViTMAE.fromConfig(
    vitMAEPreset("mae-base", {
      image_size: imageSize, patch_size: 4, hidden_size: 24, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 48,
      decoder_hidden_size: 16, decoder_num_hidden_layers: 1, decoder_num_attention_heads: 2, decoder_intermediate_size: 32,
    }),
    seed,
  );
  mae.save(maeDir);
  mae.dispose();
  const lm = LlamaForCausalLM.fromConfig(
    llamaPreset("tiny", { vocab_size: Math.max(vocab, 300), hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, max_position_embeddings: 256 }),
    seed + 1,
  );
  lm.save(llmDir);
  lm.dispose();
  return { maeDir, llmDir };
}

/** A smooth synthetic "photo" (gradients + a disc), deterministic per `k`. */
export function syntheticPhoto(size: number, k: number): RgbImage {
  const data = new Float32Array(size * size * 3);
  const cx = (0.3 + 0.4 * ((k * 37) % 10) / 10) * size, cy = (0.3 + 0.4 * ((k * 53) % 10) / 10) * size, r = size * 0.25;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const inDisc = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
      const i = (y * size + x) * 3;
      data[i] = inDisc ? 0.9 : 0.2 + 0.6 * (x / size);
      data[i + 1] = inDisc ? 0.3 + 0.05 * (k % 5) : 0.3 + 0.4 * (y / size);
      data[i + 2] = inDisc ? 0.2 : 0.5 + 0.3 * Math.sin((x + y + k) / size * 3);
    }
  return { width: size, height: size, data };
}

/** Writes `count` synthetic photos as PNG into `dir`; returns their paths. */
export async function writeSyntheticPhotos(dir: string, count: number, size: number): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  for (let k = 0; k < count; k++) {
    const p = join(dir, `photo${String(k).padStart(2, "0")}.png`);
    await writeImage(p, syntheticPhoto(size, k));
    paths.push(p);
  }
  return paths;
}
