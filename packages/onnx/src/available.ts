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
 *   int4  MatMulNBits, 4 bits, asymmetric blocks of 32 along K
 */
export const WEIGHT_FORMATS = ["fp32", "fp16", "int8", "int4"] as const;
export type WeightFormat = (typeof WEIGHT_FORMATS)[number];

/** True when onnxruntime-node loads on this machine. */
export async function ortAvailable(): Promise<boolean> {
  try {
    await import("onnxruntime-node");
    return true;
  } catch {
    return false;
  }
}
