/**
 * safetensors reader/writer.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}`,
 * then the byte buffer (offsets are relative to its start).
 *
 * Tensors are read one at a time by offset from the open file, so a shard larger
 * than Node's 4 GB Buffer limit loads and a checkpoint is never held twice.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, renameSync, statSync, writeSync, fsyncSync, unlinkSync } from "node:fs";
import { dirname, join, basename } from "node:path";

export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export interface TensorEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

export type TypedData = Float32Array | Int32Array | Uint8Array | BigInt64Array | Float64Array | Int16Array | Int8Array | Uint16Array;

/** A tensor read from a checkpoint: floating types become Float32Array, integers Int32Array (BOOL/U8 Uint8Array). */
export interface LoadedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

export class SafetensorsError extends Error {}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

let halfTable: Float32Array | undefined;

/** IEEE half → float32 (exact), through a 65536-entry table built on first use. */
export function f16ToF32(bits: Uint16Array): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  const table = halfTable;
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

/** bfloat16 → float32 (exact: the upper 16 bits of a float32). */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const u = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  return new Float32Array(u.buffer);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 → IEEE half, round to nearest even, overflow → ±inf. */
export function f32ToF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32Scratch[0] = values[i];
    const x = u32Scratch[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) { out[i] = sign | 0x7c00 | (mant ? 0x200 : 0); continue; }
    let e = exp - 127 + 15;
    if (e >= 31) { out[i] = sign | 0x7c00; continue; }
    if (e <= 0) {
      if (e < -10) { out[i] = sign; continue; }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && (half & 1))) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
    out[i] = sign | half; // a carry into the exponent is the correct rounding
  }
  return out;
}

/** float32 → bfloat16, round to nearest even. */
export function f32ToBF16(values: Float32Array): Uint16Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = u[i];
    if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) { out[i] = (x >>> 16) | 0x40; continue; }
    const rounding = 0x7fff + ((x >>> 16) & 1);
    out[i] = ((x + rounding) >>> 16) & 0xffff;
  }
  return out;
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** One open `.safetensors` file. Call close() when done (or use readSafetensors for small files). */
export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  readonly entries: Map<string, TensorEntry>;
  private fd: number | undefined;

  private constructor(path: string, fd: number, metadata: Record<string, string>, entries: Map<string, TensorEntry>) {
    this.path = path;
    this.fd = fd;
    this.metadata = metadata;
    this.entries = entries;
  }

  static open(path: string): SafetensorsFile {
    if (!existsSync(path)) throw new SafetensorsError(`${path}: no such safetensors file`);
    const fd = openSync(path, "r");
    try {
      const size = fstatSync(fd).size;
      if (size < 8) throw new SafetensorsError(`${path}: file too short (${size} bytes) to be safetensors`);
      const lenBuf = Buffer.alloc(8);
      readSync(fd, lenBuf, 0, 8, 0);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen <= 0 || headerLen > 100_000_000 || 8 + headerLen > size) {
        throw new SafetensorsError(`${path}: invalid header length ${headerLen} for a ${size}-byte file`);
      }
      const hbuf = Buffer.alloc(headerLen);
      readSync(fd, hbuf, 0, headerLen, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(hbuf.toString("utf8"));
      } catch (e) {
        throw new SafetensorsError(`${path}: header is not valid JSON (${(e as Error).message})`);
      }
      const dataStart = 8 + headerLen;
      const entries = new Map<string, TensorEntry>();
      let metadata: Record<string, string> = {};
      for (const [name, v] of Object.entries(header)) {
        if (name === "__metadata__") { metadata = (v ?? {}) as Record<string, string>; continue; }
        const e = v as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
        if (!e || typeof e.dtype !== "string" || !(e.dtype in DTYPE_BYTES)) {
          throw new SafetensorsError(`${path}: tensor "${name}" has unsupported dtype ${JSON.stringify(e?.dtype)}`);
        }
        if (!Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2) {
          throw new SafetensorsError(`${path}: tensor "${name}" lacks shape or data_offsets`);
        }
        const dtype = e.dtype as SafetensorsDtype;
        const [b, en] = e.data_offsets;
        const expected = numel(e.shape) * DTYPE_BYTES[dtype];
        if (en - b !== expected) {
          throw new SafetensorsError(`${path}: tensor "${name}" ${dtype}${JSON.stringify(e.shape)} needs ${expected} bytes, offsets give ${en - b}`);
        }
        if (dataStart + en > size) throw new SafetensorsError(`${path}: tensor "${name}" runs past the end of the file (truncated?)`);
        entries.set(name, { dtype, shape: e.shape, begin: dataStart + b, end: dataStart + en });
      }
      return new SafetensorsFile(path, fd, metadata, entries);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) throw new SafetensorsError(`${this.path}: no tensor named "${name}"`);
    return e;
  }

  /** Raw little-endian bytes of one tensor, read from disk into a fresh, exactly-sized ArrayBuffer. */
  readBytes(name: string): Uint8Array {
    if (this.fd === undefined) throw new SafetensorsError(`${this.path}: file is closed`);
    const e = this.entry(name);
    const n = e.end - e.begin;
    const buf = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const chunk = Math.min(n - done, 1 << 30);
      const got = readSync(this.fd, buf, done, chunk, e.begin + done);
      if (got <= 0) throw new SafetensorsError(`${this.path}: short read of "${name}"`);
      done += got;
    }
    return buf;
  }

  /** Reads one tensor; F64/F32/F16/BF16 → Float32Array, I64/I32/I16/I8 → Int32Array, U8/BOOL → Uint8Array. */
  read(name: string): LoadedTensor {
    const e = this.entry(name);
    const ab = this.readBytes(name).buffer; // no second copy: typed views share it
    const n = numel(e.shape);
    let data: Float32Array | Int32Array | Uint8Array;
    switch (e.dtype) {
      case "F32": data = new Float32Array(ab); break;
      case "F64": data = Float32Array.from(new Float64Array(ab)); break;
      case "F16": data = f16ToF32(new Uint16Array(ab)); break;
      case "BF16": data = bf16ToF32(new Uint16Array(ab)); break;
      case "I64": {
        const big = new BigInt64Array(ab);
        data = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          const v = big[i];
          if (v > 2147483647n || v < -2147483648n) throw new SafetensorsError(`${this.path}: "${name}" I64 value ${v} does not fit int32`);
          data[i] = Number(v);
        }
        break;
      }
      case "I32": data = new Int32Array(ab); break;
      case "I16": data = Int32Array.from(new Int16Array(ab)); break;
      case "I8": data = Int32Array.from(new Int8Array(ab)); break;
      case "U8": case "BOOL": data = new Uint8Array(ab); break;
    }
    return { dtype: e.dtype, shape: [...e.shape], data };
  }

  readFloat32(name: string): Float32Array {
    const t = this.read(name);
    return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * A checkpoint of one or more safetensors shards: a file, a folder with
 * `model.safetensors`, or a folder with `model.safetensors.index.json`.
 */
export class SafetensorsCheckpoint {
  readonly files: SafetensorsFile[];
  private readonly where = new Map<string, SafetensorsFile>();
  readonly metadata: Record<string, string>;
  readonly source: string;

  private constructor(source: string, files: SafetensorsFile[]) {
    this.source = source;
    this.files = files;
    for (const f of files) {
      for (const k of f.keys()) {
        if (this.where.has(k)) throw new SafetensorsError(`${f.path}: tensor "${k}" also stored in ${this.where.get(k)!.path}`);
        this.where.set(k, f);
      }
    }
    this.metadata = files[0]?.metadata ?? {};
  }

  static open(pathOrDir: string, prefix = "model"): SafetensorsCheckpoint {
    if (!existsSync(pathOrDir)) throw new SafetensorsError(`${pathOrDir}: no such file or folder`);
    if (statSync(pathOrDir).isFile()) {
      if (pathOrDir.endsWith(".index.json")) return SafetensorsCheckpoint.fromIndex(pathOrDir);
      return new SafetensorsCheckpoint(pathOrDir, [SafetensorsFile.open(pathOrDir)]);
    }
    const index = join(pathOrDir, `${prefix}.safetensors.index.json`);
    if (existsSync(index)) return SafetensorsCheckpoint.fromIndex(index);
    const single = join(pathOrDir, `${prefix}.safetensors`);
    if (existsSync(single)) return new SafetensorsCheckpoint(single, [SafetensorsFile.open(single)]);
    throw new SafetensorsError(`${pathOrDir}: found neither ${prefix}.safetensors nor ${prefix}.safetensors.index.json`);
  }

  private static fromIndex(indexPath: string): SafetensorsCheckpoint {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(readFileSync(indexPath, "utf8"));
    } catch (e) {
      throw new SafetensorsError(`${indexPath}: not valid JSON (${(e as Error).message})`);
    }
    if (!index.weight_map || typeof index.weight_map !== "object") {
      throw new SafetensorsError(`${indexPath}: missing "weight_map"`);
    }
    const dir = dirname(indexPath);
    const shardNames = [...new Set(Object.values(index.weight_map))];
    const files: SafetensorsFile[] = [];
    try {
      for (const s of shardNames) files.push(SafetensorsFile.open(join(dir, s)));
    } catch (e) {
      files.forEach((f) => f.close());
      throw e;
    }
    const ckpt = new SafetensorsCheckpoint(indexPath, files);
    for (const [k, s] of Object.entries(index.weight_map)) {
      const f = ckpt.where.get(k);
      if (!f) throw new SafetensorsError(`${indexPath}: weight_map names "${k}" in ${s} but that shard has no such tensor`);
      if (basename(f.path) !== s) throw new SafetensorsError(`${indexPath}: "${k}" mapped to ${s} but found in ${basename(f.path)}`);
    }
    return ckpt;
  }

  keys(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  entry(name: string): TensorEntry & { file: string } {
    const f = this.where.get(name);
    if (!f) throw new SafetensorsError(`${this.source}: no tensor named "${name}"`);
    return { ...f.entry(name), file: f.path };
  }

  read(name: string): LoadedTensor {
    const f = this.where.get(name);
    if (!f) throw new SafetensorsError(`${this.source}: no tensor named "${name}"`);
    return f.read(name);
  }

  readFloat32(name: string): Float32Array {
    const t = this.read(name);
    return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
  }

  close(): void {
    this.files.forEach((f) => f.close());
  }
}

/** A tensor to write. `data` is converted to `dtype` (default: F32 for Float32Array, I32 for Int32Array, U8 for Uint8Array). */
export interface TensorToWrite {
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array | BigInt64Array;
  dtype?: SafetensorsDtype;
}

function encode(name: string, t: TensorToWrite): { dtype: SafetensorsDtype; bytes: Uint8Array } {
  const dtype: SafetensorsDtype =
    t.dtype ?? (t.data instanceof Float32Array ? "F32" : t.data instanceof Int32Array ? "I32" : t.data instanceof BigInt64Array ? "I64" : "U8");
  if (t.data.length !== numel(t.shape)) {
    throw new SafetensorsError(`tensor "${name}": shape ${JSON.stringify(t.shape)} needs ${numel(t.shape)} values, got ${t.data.length}`);
  }
  const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const f32 = () => (t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>));
  switch (dtype) {
    case "F32": return { dtype, bytes: asBytes(f32()) };
    case "F16": return { dtype, bytes: asBytes(f32ToF16(f32())) };
    case "BF16": return { dtype, bytes: asBytes(f32ToBF16(f32())) };
    case "F64": return { dtype, bytes: asBytes(Float64Array.from(f32())) };
    case "I32": return { dtype, bytes: asBytes(t.data instanceof Int32Array ? t.data : Int32Array.from(t.data as ArrayLike<number>)) };
    case "I64": return { dtype, bytes: asBytes(t.data instanceof BigInt64Array ? t.data : BigInt64Array.from(Array.from(t.data as ArrayLike<number>, (v) => BigInt(Math.trunc(v))))) };
    case "U8": case "BOOL": return { dtype, bytes: asBytes(t.data instanceof Uint8Array ? t.data : Uint8Array.from(t.data as ArrayLike<number>)) };
    default: throw new SafetensorsError(`tensor "${name}": writing ${dtype} is not supported`);
  }
}

/**
 * Writes a safetensors file atomically (temporary file, fsync, rename).
 * Tensors are written in sorted name order, as the Python library does.
 */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): void {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const encoded: Uint8Array[] = [];
  let offset = 0;
  for (const n of names) {
    const { dtype, bytes } = encode(n, tensors[n]);
    header[n] = { dtype, shape: tensors[n].shape, data_offsets: [offset, offset + bytes.byteLength] };
    encoded.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += " ".repeat(pad);
  const hbytes = Buffer.from(json, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hbytes.length));
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, len);
    writeSync(fd, hbytes);
    for (const b of encoded) {
      let done = 0;
      while (done < b.byteLength) done += writeSync(fd, b, done, Math.min(b.byteLength - done, 1 << 30));
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    try { unlinkSync(tmp); } catch { /* nothing to remove */ }
    throw e;
  }
}

/** Reads every tensor of a (small) checkpoint into memory. */
export function readSafetensors(pathOrDir: string): { tensors: Record<string, LoadedTensor>; metadata: Record<string, string> } {
  const ck = SafetensorsCheckpoint.open(pathOrDir);
  try {
    const tensors: Record<string, LoadedTensor> = {};
    for (const k of ck.keys()) tensors[k] = ck.read(k);
    return { tensors, metadata: ck.metadata };
  } finally {
    ck.close();
  }
}
