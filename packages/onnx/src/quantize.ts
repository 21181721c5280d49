/**
 * Weight-only quantization of linear layers, in the layouts ONNX Runtime's com.microsoft
 * `MatMulNBits` reads. Every function takes a weight in PyTorch layout `[N, K]` (N output
 * features, K input features, row-major: the HF `*.weight` tensor as stored), so a row is one
 * output channel and quantization blocks run along K.
 *
 *   int8  per output channel, symmetric:  scale[n] = max_k |w[n,k]| / 127,
 *         q = round(w / scale) ∈ [−127, 127]          (zero point 0, stored as code q + 128)
 *   int4  per block of `blockSize` along K, asymmetric: the block's range widened to include 0,
 *         scale = (max − min) / 15, zero point z = round(−min / scale) ∈ [0, 15],
 *         code = clamp(round(w / scale) + z, 0, 15)
 *
 * Dequantized weight = (code − zero point) · scale; with round-to-nearest the error of every
 * element is at most scale / 2 (for int4 also at the ends of the range: the rounded zero point
 * moves the grid by at most half a step, so min and max stay within half a step of it).
 *
 * MatMulNBits layout (ORT contrib-operator spec, restated): B is uint8 `[N, kBlocks, blob]` with
 * kBlocks = ceil(K / blockSize) and blob = blockSize · bits / 8 bytes; within a block the codes
 * follow K order and are packed from the least significant bits up, so for 4 bits the element at
 * even position 2j sits in the low nibble of byte j and position 2j + 1 in its high nibble. Scales
 * are `[N, kBlocks]` (float, A's type). Packed zero points are uint8 `[N, ceil(kBlocks · bits / 8)]`,
 * packed the same way along the block axis (each row starts on a new byte); without them the
 * operator assumes 2^(bits−1) (8 for 4 bits, 128 for 8 bits). Positions past K in the last block
 * are padding: we fill them with the zero-point code so they dequantize to 0.
 *
 * int8 is stored for MatMulNBits as bits = 8 with the channel's scale repeated in every block
 * (a per-channel grid is a block grid whose blocks share one scale) and no zero-point input
 * (the default 128 is our zero).
 */

/** Symmetric per-output-channel int8: codes `[N·K]` in [−127, 127], scales `[N]`. */
export interface Int8Channels {
  codes: Int8Array;
  scales: Float32Array;
}

/** Asymmetric block-wise int4: codes `[N·K]` in [0, 15], scales and zero points `[N·kBlocks]`. */
export interface Int4Blocks {
  codes: Uint8Array;
  scales: Float32Array;
  zeroPoints: Uint8Array;
  blockSize: number;
}

function checkWeight(fn: string, w: Float32Array, n: number, k: number): void {
  if (!Number.isInteger(n) || !Number.isInteger(k) || n < 1 || k < 1) throw new RangeError(`${fn}: N = ${n}, K = ${k} must be positive integers`);
  if (w.length !== n * k) throw new Error(`${fn}: weight has ${w.length} values, [N, K] = [${n}, ${k}] needs ${n * k}`);
}

/** Throws unless `blockSize` is one MatMulNBits takes: a power of two ≥ 16. */
export function checkBlockSize(fn: string, blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
    throw new RangeError(`${fn}: block size ${blockSize} must be a power of two ≥ 16 (MatMulNBits)`);
  }
}

/** Blocks along K for a block size (the last one may be partial). */
export function blockCount(k: number, blockSize: number): number {
  return Math.ceil(k / blockSize);
}

/** Per output channel (row of `w` `[N, K]`), symmetric int8. An all-zero row gets scale 1. */
export function quantizeInt8PerChannel(w: Float32Array, n: number, k: number): Int8Channels {
  checkWeight("quantizeInt8PerChannel", w, n, k);
  const codes = new Int8Array(n * k);
  const scales = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const row = r * k;
    let amax = 0;
    for (let i = 0; i < k; i++) {
      const v = Math.abs(w[row + i]);
      if (!(v <= amax)) amax = v; // also lets NaN through to the check below
    }
    if (!Number.isFinite(amax)) throw new Error(`quantizeInt8PerChannel: row ${r} holds a non-finite value`);
    const scale = amax > 0 ? Math.fround(amax / 127) : 1;
    scales[r] = scale;
    for (let i = 0; i < k; i++) codes[row + i] = Math.max(-127, Math.min(127, Math.round(w[row + i] / scale)));
  }
  return { codes, scales };
}

/** Block-wise asymmetric int4 along K (rows of `w` `[N, K]`). A block of zeros gets scale 1. */
export function quantizeInt4Blocks(w: Float32Array, n: number, k: number, blockSize = 32): Int4Blocks {
  checkWeight("quantizeInt4Blocks", w, n, k);
  checkBlockSize("quantizeInt4Blocks", blockSize);
  const nb = blockCount(k, blockSize);
  const codes = new Uint8Array(n * k);
  const scales = new Float32Array(n * nb);
  const zeroPoints = new Uint8Array(n * nb);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < nb; b++) {
      const start = r * k + b * blockSize;
      const end = r * k + Math.min(k, (b + 1) * blockSize);
      let lo = 0;
      let hi = 0; // the range always holds 0, so the zero point is an exact code
      for (let i = start; i < end; i++) {
        const v = w[i];
        if (!Number.isFinite(v)) throw new Error(`quantizeInt4Blocks: row ${r}, column ${i - r * k} holds a non-finite value`);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const scale = hi > lo ? Math.fround((hi - lo) / 15) : 1;
      const zp = Math.max(0, Math.min(15, Math.round(-lo / scale)));
      scales[r * nb + b] = scale;
      zeroPoints[r * nb + b] = zp;
      for (let i = start; i < end; i++) codes[i] = Math.max(0, Math.min(15, Math.round(w[i] / scale) + zp));
    }
  }
  return { codes, scales, zeroPoints, blockSize };
}

/**
 * Packs codes `[N·K]` (each < 2^bits) into MatMulNBits' B `[N, kBlocks, blob]`, least significant
 * bits first along K; `pad(n, block)` is the code for positions past K (default 0).
 */
export function packNBits(codes: ArrayLike<number>, n: number, k: number, bits: 4 | 8, blockSize: number, pad: (row: number, block: number) => number = () => 0): Uint8Array {
  if (codes.length !== n * k) throw new Error(`packNBits: ${codes.length} codes, [N, K] = [${n}, ${k}] needs ${n * k}`);
  const nb = blockCount(k, blockSize);
  const blob = (blockSize * bits) / 8;
  const out = new Uint8Array(n * nb * blob);
  const max = (1 << bits) - 1;
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < nb; b++) {
      const base = (r * nb + b) * blob;
      const fill = pad(r, b);
      for (let j = 0; j < blockSize; j++) {
        const col = b * blockSize + j;
        const c = col < k ? codes[r * k + col] : fill;
        if (!(c >= 0 && c <= max)) throw new RangeError(`packNBits: code ${c} at row ${r}, column ${col} does not fit ${bits} bits`);
        if (bits === 8) out[base + j] = c;
        else out[base + (j >> 1)] |= (j & 1) === 0 ? c : c << 4;
      }
    }
  }
  return out;
}

/** Packs 4-bit zero points `[N·kBlocks]` into uint8 `[N, ceil(kBlocks / 2)]` (low nibble first). */
export function packZeroPoints4(zeroPoints: Uint8Array, n: number, kBlocks: number): Uint8Array {
  if (zeroPoints.length !== n * kBlocks) throw new Error(`packZeroPoints4: ${zeroPoints.length} zero points, [N, kBlocks] = [${n}, ${kBlocks}] needs ${n * kBlocks}`);
  const width = Math.ceil(kBlocks / 2);
  const out = new Uint8Array(n * width);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < kBlocks; b++) {
      const z = zeroPoints[r * kBlocks + b];
      if (z > 15) throw new RangeError(`packZeroPoints4: zero point ${z} at row ${r}, block ${b} does not fit 4 bits`);
      out[r * width + (b >> 1)] |= (b & 1) === 0 ? z : z << 4;
    }
  }
  return out;
}

/** Inputs of one MatMulNBits node: B, scales and (int4) packed zero points, with its attributes. */
export interface MatMulNBitsWeights {
  K: number;
  N: number;
  bits: 4 | 8;
  blockSize: number;
  /** uint8 `[N, kBlocks, blob]`. */
  b: Uint8Array;
  /** `[N, kBlocks]`. */
  scales: Float32Array;
  /** uint8 `[N, ceil(kBlocks · bits / 8)]`, or none (the operator's default 2^(bits−1)). */
  zeroPoints?: Uint8Array;
}

/** The block size the int8 per-channel weights are stored with (the largest MLAS handles well, capped by K). */
export function int8BlockSize(k: number): number {
  let bs = 16;
  while (bs < 256 && bs < k) bs *= 2;
  return bs;
}

/** Symmetric per-channel int8 as MatMulNBits inputs (bits 8, the scale repeated per block). */
export function int8MatMulNBits(w: Float32Array, n: number, k: number): MatMulNBitsWeights {
  const q = quantizeInt8PerChannel(w, n, k);
  const blockSize = int8BlockSize(k);
  const nb = blockCount(k, blockSize);
  const codes = new Uint8Array(n * k);
  for (let i = 0; i < codes.length; i++) codes[i] = q.codes[i] + 128;
  const scales = new Float32Array(n * nb);
  for (let r = 0; r < n; r++) scales.fill(q.scales[r], r * nb, (r + 1) * nb);
  return { K: k, N: n, bits: 8, blockSize, b: packNBits(codes, n, k, 8, blockSize, () => 128), scales };
}

/** Asymmetric block-wise int4 as MatMulNBits inputs. */
export function int4MatMulNBits(w: Float32Array, n: number, k: number, blockSize = 32): MatMulNBitsWeights {
  const q = quantizeInt4Blocks(w, n, k, blockSize);
  const nb = blockCount(k, blockSize);
  const b = packNBits(q.codes, n, k, 4, blockSize, (r, blk) => q.zeroPoints[r * nb + blk]);
  return { K: k, N: n, bits: 4, blockSize, b, scales: q.scales, zeroPoints: packZeroPoints4(q.zeroPoints, n, nb) };
}
