/**
 * What a program needs to know of the ONNX Runtime engine before loading it (the
 * `@lm4lv/onnx/available` subpath, which imports nothing): whether onnxruntime-node loads on this
 * machine, and the weight formats of an export. Apps check their options and choose an engine
 * with these, then import `@lm4lv/onnx` (which loads onnxruntime-node) only for the ORT engine.
 */

/**
 * How the weights of a linear layer of the LM are stored in an export:
 *   fp32  MatMul with a float32 kernel `[K, N]`
 *   fp16  float16 kernel + Cast (half the file; ONNX Runtime's CPU provider folds the Cast at
 *         load, so in memory and speed it is fp32)
 *   int8  MatMulNBits, 8 bits, symmetric per output channel (see quantize.ts)
 *   int4  MatMulNBits, 4 bits, asymmetric blocks along K (`INT4_BLOCK_SIZES`, 32 by default)
 */
export const WEIGHT_FORMATS = ["fp32", "fp16", "int8", "int4"] as const;
export type WeightFormat = (typeof WEIGHT_FORMATS)[number];

/**
 * Block sizes an int4 export takes (weights per scale and zero point along K). MatMulNBits reads
 * any power of two ≥ 16; these three are the ones measured (docs/scale.md): 32 keeps the error
 * lowest, 128 stores a quarter of the scales and zero points (a smaller export and peak memory).
 */
export const INT4_BLOCK_SIZES = [32, 64, 128] as const;
export type Int4BlockSize = (typeof INT4_BLOCK_SIZES)[number];
/** The int4 block size when none is given (the exports made before the option used it). */
export const DEFAULT_INT4_BLOCK_SIZE: Int4BlockSize = 32;

/**
 * The name of a weight setting, as its export sub-folder and in reports: the format, and for int4
 * with a block size other than the default `-b<size>` (`int4`, `int4-b128`).
 */
export function weightSettingName(format: WeightFormat, int4BlockSize: number = DEFAULT_INT4_BLOCK_SIZE): string {
  return format === "int4" && int4BlockSize !== DEFAULT_INT4_BLOCK_SIZE ? `${format}-b${int4BlockSize}` : format;
}

/** True when onnxruntime-node loads on this machine. */
export async function ortAvailable(): Promise<boolean> {
  try {
    await import("onnxruntime-node");
    return true;
  } catch {
    return false;
  }
}
