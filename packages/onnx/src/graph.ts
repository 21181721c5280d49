/**
 * A small ONNX graph builder: value names in, value names out.
 *
 *   const g = new OnnxGraph("demo");
 *   const x = g.input("x", "float32", ["batch", 4]);
 *   const w = g.initializer("w", new Float32Array(12), [4, 3]);
 *   g.output(g.op("MatMul", [x, w]), "float32", ["batch", 3], "y");
 *   const bytes = g.toBytes();            // a self-contained ModelProto
 *   g.save("demo.onnx", { externalAbove: 1024 }); // big initializers in demo.onnx.data
 *
 * Default opset: ai.onnx 17 (LayerNormalization exists; ReduceMean still takes `axes` as an
 * attribute). Initializers are raw little-endian data: float32 / float64 / int64 / int32 / bool by
 * the array's class, and float16 (Uint16Array bits), uint8 or int8 when the type is given.
 *
 * Lazy initializers (`lazyInitializer`) are produced only when the model is written: a streaming
 * export declares every weight first, and `save()` reads, converts and writes them one at a time,
 * so no more than one weight is in memory at once (see SaveOptions for when data goes external).
 *
 * External data (ONNX's mechanism for models over the 2 GB protobuf limit): an initializer
 * whose byte size is above the threshold is written to a side file and the TensorProto only
 * names it: data_location = EXTERNAL, external_data = {location, offset, length}. The
 * location is relative to the model file's folder; offsets are 4096-aligned.
 */
import { closeSync, openSync, renameSync, writeSync, mkdirSync } from "node:fs";
import { basename, dirname } from "node:path";
import onnxProto from "onnx-proto";
import type { onnx as proto } from "onnx-proto";
import { writeFileAtomic } from "@lm4lv/core";
import { inferNode } from "./shapes.js";

const { onnx } = onnxProto;

export type ElemType = "float32" | "float64" | "float16" | "int64" | "int32" | "int8" | "uint8" | "bool";
/** Floating-point element type of a graph (float64 graphs are for gradient checks). */
export type FloatType = "float32" | "float64";
/** A dimension: a fixed size or a symbolic name ("batch", "past_sequence_length", ...). */
export type Dim = number | string;
export type AttrValue = number | string | number[] | { float: number } | { floats: number[] } | { tensor: { data: Float32Array | Float64Array | BigInt64Array; dims: number[] } };
type Data = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array | Uint16Array;
/** Raw initializer data: float16 values travel as their IEEE bits in a Uint16Array. */
export type InitializerData = Data;

/** A node as the graph holds it (read-only view for passes such as autodiff). */
export interface GraphNode {
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  int8: onnx.TensorProto.DataType.INT8,
  uint8: onnx.TensorProto.DataType.UINT8,
  bool: onnx.TensorProto.DataType.BOOL,
};

/** Bytes of one element. */
const ELEM_BYTES: Record<ElemType, number> = { float32: 4, float64: 8, float16: 2, int32: 4, int64: 8, int8: 1, uint8: 1, bool: 1 };

/** Protobuf messages cannot exceed 2 GiB; "auto" externalizes above this total (with headroom). */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;
const AUTO_TOTAL_LIMIT = 1.8 * 2 ** 30;
/**
 * Lazy (streamed) weights above this total also go external by default, so a write holds one at
 * a time, and ONNX Runtime loads them without parsing a model-sized protobuf (measured at the
 * TinyLlama-1.1B shape, int8: export peak RSS 2.7 → 1.2 GiB, load peak 2.1–2.7 → 1.95 GiB).
 */
const AUTO_LAZY_LIMIT = 2 ** 28;
const EXTERNAL_ALIGN = 4096;

interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  byteLength: number;
  /** The data, or undefined for a lazy initializer (produced by `produce` when written). */
  bytes?: Uint8Array;
  produce?: () => Uint8Array;
}

export interface SaveOptions {
  /**
   * Initializers with more bytes than this go to the side file. Default: none when the total
   * is below ~1.8 GiB and the lazy initializers' below 256 MiB, else every initializer above 1 KiB.
   */
  externalAbove?: number;
  /** Side file name (in the model's folder). Default `<model file name>.data`. */
  externalFile?: string;
}

export interface SavedModel {
  path: string;
  /** The side file, when any initializer went there. */
  externalPath?: string;
  /** Initializers written to the side file. */
  externalCount: number;
}

function bytesOf(data: Data): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The element type an array holds by default (Uint8Array: bool, Uint16Array: float16 bits). */
function defaultElemType(data: Data): ElemType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint16Array) return "float16";
  return "bool";
}

/** The array classes that may carry each element type. */
function fitsType(data: Data, type: ElemType): boolean {
  switch (type) {
    case "uint8":
    case "bool":
      return data instanceof Uint8Array;
    default:
      return defaultElemType(data) === type;
  }
}

function elemTypeOf(data: Data): number {
  return ELEM[defaultElemType(data)];
}

export interface OnnxGraphOptions {
  /** Opset of the default domain. Default 17. */
  opset?: number;
  /** Element type of float constants (`f32()`), parameters and Casts to float. Default float32. */
  floatType?: FloatType;
  /**
   * Parameter names (see `param()`) that become graph inputs instead of initializers: the values
   * a training graph is fed and differentiates.
   */
  trainable?: Iterable<string>;
}

export class OnnxGraph {
  readonly name: string;
  readonly opset: number;
  readonly floatType: FloatType;
  /** Names passed to `param()` that were declared as inputs (trainable), in order. */
  readonly trainableParams: string[] = [];
  private readonly trainable: Set<string>;
  private readonly graphNodes: GraphNode[] = [];
  /** Static shapes where known (inputs with numeric dims, initializers, inferred node outputs). */
  private readonly shapes = new Map<string, number[]>();
  /** Values of small int64 constants (shapes, axes) where known, for shape inference. */
  private readonly intValues = new Map<string, number[]>();
  private readonly nodes: proto.INodeProto[] = [];
  private readonly inits: Initializer[] = [];
  private readonly inputs: proto.IValueInfoProto[] = [];
  private readonly outputs: proto.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private counter = 0;
  /** Operators from the com.microsoft domain are used (ORT contrib ops). */
  private usesMicrosoft = false;

  constructor(name: string, opts: number | OnnxGraphOptions = {}) {
    const o = typeof opts === "number" ? { opset: opts } : opts;
    this.name = name;
    this.opset = o.opset ?? 17;
    this.floatType = o.floatType ?? "float32";
    this.trainable = new Set(o.trainable ?? []);
  }

  /** A fresh value name with the given prefix. */
  fresh(prefix: string): string {
    let n = `${prefix}_${this.counter++}`;
    while (this.names.has(n)) n = `${prefix}_${this.counter++}`;
    this.names.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`OnnxGraph ${this.name}: value name "${name}" is already used`);
    this.names.add(name);
    return name;
  }

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), type, dims));
    if (dims.every((d) => typeof d === "number")) this.shapes.set(name, dims as number[]);
    return name;
  }

  /**
   * A model weight: an initializer, or a graph input of the graph's float type when `name` is one
   * of the trainable names given to the constructor. Data is converted to the float type.
   */
  param(name: string, data: Float32Array | Float64Array | (() => Float32Array), dims: number[]): string {
    if (this.trainable.has(name)) {
      const size = dims.reduce((a, b) => a * b, 1);
      if (typeof data !== "function" && size !== data.length) throw new Error(`OnnxGraph ${this.name}: parameter "${name}" has ${data.length} values, shape [${dims}] needs ${size}`);
      this.trainableParams.push(name);
      return this.input(name, this.floatType, dims);
    }
    if (typeof data === "function") {
      const f64 = this.floatType === "float64";
      return this.lazyInitializer(name, this.floatType, dims, () => (f64 ? Float64Array.from(data()) : data()));
    }
    return this.initializer(name, this.floatType === "float64" ? Float64Array.from(data) : data instanceof Float32Array ? data : Float32Array.from(data), dims);
  }

  /** Whether `name` was declared trainable (it may not have been used yet). */
  isTrainable(name: string): boolean {
    return this.trainable.has(name);
  }

  /** The static shape of a value, or undefined when it is not known. */
  shapeOf(value: string): number[] | undefined {
    return this.shapes.get(value);
  }

  /** The static shape of a value; throws naming the value when it is not known. */
  shape(value: string): number[] {
    const s = this.shapes.get(value);
    if (!s) throw new Error(`OnnxGraph ${this.name}: the shape of "${value}" is not known statically (declare inputs with numeric dims)`);
    return s;
  }

  /** The integer values of a constant (int64 initializer or a value folded from one), if known. */
  intValue(value: string): number[] | undefined {
    return this.intValues.get(value);
  }

  /** The nodes added so far, in order (a topological order: a node only uses earlier values). */
  get graphNodeList(): readonly GraphNode[] {
    return this.graphNodes;
  }

  /** Names of the declared graph outputs. */
  get outputNames(): string[] {
    return this.outputs.map((o) => o.name as string);
  }

  /** Declares `value` a graph output; renames it through an Identity when `name` differs. */
  output(value: string, type: ElemType, dims: Dim[], name = value): string {
    if (name !== value) {
      this.claim(name);
      this.nodes.push({ opType: "Identity", input: [value], output: [name], name: `out_${name}` });
      this.graphNodes.push({ opType: "Identity", domain: "", inputs: [value], outputs: [name], attrs: {} });
      const s = this.shapes.get(value);
      if (s) this.shapes.set(name, s);
    }
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /**
   * A constant tensor stored as raw data. The element type follows the array (Float32Array
   * float32, Int32Array int32, Uint8Array bool, Uint16Array float16 bits, ...) unless `type`
   * names another one the array can carry ("uint8" for a Uint8Array).
   */
  initializer(name: string, data: Data, dims: number[], type?: ElemType): string {
    return this.addInit(this.claim(name), data, dims, type);
  }

  /**
   * A constant whose data is produced by `produce` when the model is written (once per write),
   * then dropped: how a streaming export keeps one weight in memory at a time. `produce` must
   * return exactly `dims` values of `type` (checked when it runs).
   */
  lazyInitializer(name: string, type: ElemType, dims: number[], produce: () => Data): string {
    this.claim(name);
    const size = dims.reduce((a, b) => a * b, 1);
    const label = `OnnxGraph ${this.name}: lazy initializer "${name}"`;
    this.inits.push({
      name,
      dims: [...dims],
      dataType: ELEM[type],
      byteLength: size * ELEM_BYTES[type],
      produce: () => {
        const data = produce();
        if (!fitsType(data, type)) throw new Error(`${label} is declared ${type} but produced a ${data.constructor.name}`);
        if (data.length !== size) throw new Error(`${label} produced ${data.length} values, shape [${dims}] needs ${size}`);
        return bytesOf(data);
      },
    });
    this.shapes.set(name, [...dims]);
    return name;
  }

  private addInit(name: string, data: Data, dims: number[], type?: ElemType): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new Error(`OnnxGraph ${this.name}: initializer "${name}" has ${data.length} values, shape [${dims}] needs ${size}`);
    if (type && !fitsType(data, type)) throw new Error(`OnnxGraph ${this.name}: initializer "${name}" is declared ${type} but its data is a ${data.constructor.name}`);
    const bytes = bytesOf(data);
    this.inits.push({ name, dims: [...dims], dataType: type ? ELEM[type] : elemTypeOf(data), byteLength: bytes.byteLength, bytes });
    this.shapes.set(name, [...dims]);
    if (data instanceof BigInt64Array && data.length <= 64) this.intValues.set(name, Array.from(data, Number));
    return name;
  }

  /** An int64 constant (shapes, axes, indices), shared between uses. */
  i64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims}:${values}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.addInit(this.fresh("const_i64"), BigInt64Array.from(values.map(BigInt)), dims);
      this.constCache.set(key, name);
    }
    return name;
  }

  /** A float constant of the graph's float type (scalar when dims = []), shared between uses. */
  f32(values: number[], dims: number[] = values.length === 1 ? [] : [values.length]): string {
    const key = `f32:${dims}:${values}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.addInit(this.fresh("const_f32"), this.floatType === "float64" ? Float64Array.from(values) : Float32Array.from(values), dims);
      this.constCache.set(key, name);
    }
    return name;
  }

  /** Adds a node; returns its output names (`outputs` count or names). Empty input names mean "absent". */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs: number | string[] = 1, domain = ""): string[] {
    const outs = typeof outputs === "number" ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase())) : outputs.map((o) => this.claim(o));
    if (domain === "com.microsoft") this.usesMicrosoft = true;
    // Cast "to float" follows the graph's float type.
    if (opType === "Cast" && attrs.to === ELEM.float32 && this.floatType === "float64") attrs = { ...attrs, to: ELEM.float64 };
    const node: GraphNode = { opType, domain, inputs: [...inputs], outputs: outs, attrs };
    this.graphNodes.push(node);
    inferNode(node, this.shapes, this.intValues);
    this.nodes.push({
      opType,
      domain: domain || undefined,
      input: inputs,
      output: outs,
      name: this.fresh(`n_${opType}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** A single-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, attrs)[0];
  }

  get initializerCount(): number {
    return this.inits.length;
  }

  /** Bytes held by all initializers. */
  get initializerBytes(): number {
    return this.inits.reduce((s, i) => s + i.byteLength, 0);
  }

  private modelProto(external?: Map<string, { location: string; offset: number; length: number }>): proto.ModelProto {
    const initializer = this.inits.map((i): proto.ITensorProto => {
      const ext = external?.get(i.name);
      if (!ext) return { name: i.name, dims: i.dims, dataType: i.dataType, rawData: i.bytes ?? i.produce!() };
      return {
        name: i.name,
        dims: i.dims,
        dataType: i.dataType,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: "location", value: ext.location },
          { key: "offset", value: String(ext.offset) },
          { key: "length", value: String(ext.length) },
        ],
      };
    });
    const opsetImport: proto.IOperatorSetIdProto[] = [{ domain: "", version: this.opset }];
    if (this.usesMicrosoft) opsetImport.push({ domain: "com.microsoft", version: 1 });
    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: "@lm4lv/onnx",
      producerVersion: "0.1.0",
      opsetImport,
      graph: { name: this.name, node: this.nodes, initializer, input: this.inputs, output: this.outputs },
    });
  }

  /** The whole model as one protobuf message (every initializer inline). Throws past the 2 GiB limit. */
  toBytes(): Uint8Array {
    if (this.initializerBytes > PROTOBUF_LIMIT) {
      throw new Error(`OnnxGraph ${this.name}: ${this.initializerBytes} bytes of weights exceed the 2 GiB protobuf limit; use save() with external data`);
    }
    return onnx.ModelProto.encode(this.modelProto()).finish();
  }

  /** Writes the model to `path`; initializers above the threshold go to a side file (see SaveOptions). */
  save(path: string, opts: SaveOptions = {}): SavedModel {
    mkdirSync(dirname(path), { recursive: true });
    const lazyBytes = this.inits.reduce((n, i) => n + (i.bytes ? 0 : i.byteLength), 0);
    const threshold = opts.externalAbove ?? (this.initializerBytes > AUTO_TOTAL_LIMIT || lazyBytes > AUTO_LAZY_LIMIT ? 1024 : Infinity);
    const location = opts.externalFile ?? `${basename(path)}.data`;
    const big = this.inits.filter((i) => i.byteLength > threshold);
    if (!big.length) {
      writeFileAtomic(path, this.toBytes());
      return { path, externalCount: 0 };
    }
    // Side file first (streamed, aligned offsets), then the small model that points into it.
    const dataPath = `${dirname(path)}/${location}`;
    const tmp = `${dataPath}.tmp-${process.pid}`;
    const fd = openSync(tmp, "w");
    const external = new Map<string, { location: string; offset: number; length: number }>();
    let offset = 0;
    try {
      for (const init of big) {
        const pad = (EXTERNAL_ALIGN - (offset % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
        if (pad) writeSync(fd, new Uint8Array(pad));
        offset += pad;
        // A lazy initializer is produced here and dropped after the write.
        const bytes = init.bytes ?? init.produce!();
        if (bytes.byteLength !== init.byteLength) throw new Error(`OnnxGraph ${this.name}: initializer "${init.name}" produced ${bytes.byteLength} bytes, expected ${init.byteLength}`);
        writeAll(fd, bytes);
        external.set(init.name, { location, offset, length: bytes.byteLength });
        offset += bytes.byteLength;
      }
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, dataPath);
    const bytes = onnx.ModelProto.encode(this.modelProto(external)).finish();
    writeFileAtomic(path, bytes);
    return { path, externalPath: dataPath, externalCount: big.length };
  }
}

/** writeSync may write less than asked (large buffers): loop until every byte is out. */
function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
}

function valueInfo(name: string, type: ElemType, dims: Dim[]): proto.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): proto.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer (use {float: v})`);
    return { name, type: T.INT, i: v };
  }
  if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ("float" in v) return { name, type: T.FLOAT, f: v.float };
  if ("floats" in v) return { name, type: T.FLOATS, floats: v.floats };
  const t = v.tensor;
  return { name, type: T.TENSOR, t: { dims: t.dims, dataType: elemTypeOf(t.data), rawData: bytesOf(t.data) } };
}
