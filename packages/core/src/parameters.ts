/**
 * A model's parameters by Hugging Face state-dict name: what `namedParameters()` of `@lm4lv/mae`
 * and `@lm4lv/llm` return, what they train and what they save.
 *
 * Layout. Outside the model every parameter has HF's name and layout (a Linear weight is
 * `[out, in]`), so checkpoints, ONNX export and training need no renaming or transposing tables.
 * Inside, a matmul `x · Wᵀ` with a transposed operand costs a transpose per call on wasm, so:
 *
 *   frozen Linear weight      held as its kernel `Wᵀ` `[in, out]`; `kernel(name)` returns it
 *   trainable Linear weight   a `tf.Variable` in HF layout; `kernel(name)` transposes it (inside
 *                             the caller's tape, so gradients reach the variable)
 *   any other parameter       held in HF layout (a `tf.Variable` when trainable); `get(name)`
 *
 * This class is the one place where a Linear weight changes layout.
 */
import * as tf from "@tensorflow/tfjs";

/** One parameter given to the store. */
export interface ParameterInit {
  /** HF state-dict name. */
  name: string;
  tensor: tf.Tensor;
  /** An HF Linear weight (`[out, in]` in HF layout). Default false. */
  linear?: boolean;
  /** For a Linear weight: whether `tensor` is in HF layout `[out, in]` (default) or already a kernel `[in, out]`. */
  layout?: "hf" | "kernel";
}

export class ParameterStore {
  /** Compute layout: kernels for frozen Linear weights, HF layout for everything else. */
  private readonly held = new Map<string, tf.Tensor>();
  private readonly linear = new Set<string>();
  /** HF-layout copies of frozen Linear weights made by `namedParameters()`, kept until dispose. */
  private readonly hfCopies = new Map<string, tf.Tensor>();
  private disposed = false;

  /**
   * Takes ownership of the tensors (a Linear weight given in HF layout is transposed and the
   * given tensor disposed). On error every tensor taken so far is disposed. `owner` names the
   * model in error messages.
   */
  constructor(
    readonly owner: string,
    entries: Iterable<ParameterInit>,
  ) {
    try {
      for (const e of entries) {
        if (this.held.has(e.name)) throw new Error(`${owner}: parameter "${e.name}" given twice`);
        if (!e.linear) {
          this.held.set(e.name, e.tensor);
          continue;
        }
        if (e.tensor.rank !== 2) throw new Error(`${owner}: Linear weight "${e.name}" has shape [${e.tensor.shape}], expected 2-D`);
        this.linear.add(e.name);
        if ((e.layout ?? "hf") === "kernel") {
          this.held.set(e.name, e.tensor);
        } else {
          this.held.set(e.name, tf.tidy(() => tf.transpose(e.tensor))); // [out, in] → [in, out]
          e.tensor.dispose();
        }
      }
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /** Names in the order given (the checkpoint order). */
  names(): string[] {
    return [...this.held.keys()];
  }

  has(name: string): boolean {
    return this.held.has(name);
  }

  /** Whether `name` is an HF Linear weight. */
  isLinear(name: string): boolean {
    return this.linear.has(name);
  }

  /** Shape in HF layout. */
  shape(name: string): number[] {
    const t = this.tensor(name);
    if (!this.linear.has(name) || t instanceof tf.Variable) return [...t.shape];
    const [inDim, outDim] = t.shape as [number, number];
    return [outDim, inDim];
  }

  /** Number of values of the parameters whose names `select` accepts (all by default). */
  count(select: (name: string) => boolean = () => true): number {
    let n = 0;
    for (const [name, t] of this.held) if (select(name)) n += t.size;
    return n;
  }

  /** A parameter that is not a Linear weight (HF layout), e.g. a norm, a bias, an embedding table. */
  get(name: string): tf.Tensor {
    if (this.linear.has(name)) throw new Error(`${this.owner}: "${name}" is a Linear weight; use kernel()`);
    return this.tensor(name);
  }

  /**
   * The Linear weight `name` as a matmul kernel `[in, out]` (`x · kernel` = `x · Wᵀ`), plus
   * `delta` (HF layout `[out, in]`) when given. A trainable weight (or a delta) is transposed
   * here, so call it inside the forward's `tf.tidy` / gradient tape.
   */
  kernel(name: string, delta?: tf.Tensor): tf.Tensor2D {
    if (!this.linear.has(name)) throw new Error(`${this.owner}: "${name}" is not a Linear weight`);
    const t = this.tensor(name);
    const k = (t instanceof tf.Variable ? tf.transpose(t) : t) as tf.Tensor2D;
    return delta ? (tf.add(k, tf.transpose(delta)) as tf.Tensor2D) : k;
  }

  /**
   * Every parameter by name, HF layout, in order. Trainable ones are the store's `tf.Variable`s;
   * the tensors belong to the store (never dispose them). A frozen Linear weight is held as a
   * kernel, so the first call makes its HF-layout copy, kept until `dispose()`.
   */
  namedParameters(): Map<string, tf.Tensor> {
    this.check();
    const out = new Map<string, tf.Tensor>();
    for (const [name, t] of this.held) {
      if (!this.linear.has(name) || t instanceof tf.Variable) {
        out.set(name, t);
        continue;
      }
      let copy = this.hfCopies.get(name);
      if (!copy) {
        copy = tf.tidy(() => tf.transpose(t));
        this.hfCopies.set(name, copy);
      }
      out.set(name, copy);
    }
    return out;
  }

  /** One parameter's values in HF layout (a copy; nothing is kept, unlike `namedParameters()`). */
  read(name: string): Float32Array {
    const t = this.tensor(name);
    if (!this.linear.has(name) || t instanceof tf.Variable) return Float32Array.from(t.dataSync() as Float32Array);
    const hf = tf.tidy(() => tf.transpose(t));
    try {
      return hf.dataSync() as Float32Array;
    } finally {
      hf.dispose();
    }
  }

  /**
   * Makes the parameters named by `select` trainable: each becomes a `tf.Variable` in HF layout
   * that the model then computes with. Returns them by name (a parameter already trainable keeps
   * its variable). The others stay as they are.
   */
  trainable(select: (name: string) => boolean): Record<string, tf.Variable> {
    this.check();
    const out: Record<string, tf.Variable> = {};
    for (const [name, t] of [...this.held]) {
      if (!select(name)) continue;
      if (t instanceof tf.Variable) {
        out[name] = t;
        continue;
      }
      const copy = this.hfCopies.get(name);
      this.hfCopies.delete(name);
      const initial = this.linear.has(name) ? (copy ?? tf.tidy(() => tf.transpose(t))) : t;
      const v = tf.variable(initial, true); // tfjs names must be globally unique: let it choose
      if (initial !== t) initial.dispose();
      t.dispose();
      this.held.set(name, v);
      out[name] = v;
    }
    return out;
  }

  dispose(): void {
    for (const t of this.held.values()) t.dispose();
    for (const t of this.hfCopies.values()) t.dispose();
    this.held.clear();
    this.hfCopies.clear();
    this.disposed = true;
  }

  private tensor(name: string): tf.Tensor {
    this.check();
    const t = this.held.get(name);
    if (!t) throw new Error(`${this.owner}: no parameter "${name}"`);
    return t;
  }

  private check(): void {
    if (this.disposed) throw new Error(`${this.owner}: the model was disposed`);
  }
}

/** `[rows, cols]` row-major → `[cols, rows]` (host arrays, e.g. an HF Linear weight ↔ its kernel). */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  if (a.length !== rows * cols) throw new Error(`transpose2d: ${a.length} values, [${rows}, ${cols}] needs ${rows * cols}`);
  const out = new Float32Array(a.length);
  // blocked, so both sides stay in cache on large matrices
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = a[r * cols + c];
    }
  }
  return out;
}
