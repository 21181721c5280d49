/**
 * Adam over named tf.Variables, written out so its state is explicit and
 * checkpointable. The update follows PyTorch's `torch.optim.Adam`
 * (amsgrad off), with t the step count after increment:
 *
 *   g  ← g + wd·p                        (L2 decay, only when decoupled = false)
 *   p  ← p · (1 − lr·wd)                 (decoupled decay as AdamW, when decoupled = true)
 *   m  ← β1·m + (1 − β1)·g
 *   v  ← β2·v + (1 − β2)·g²
 *   p  ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
 *
 * The bias corrections are computed in float64 on the host; tensors are float32.
 * Variables that get no gradient in a step are left alone (as PyTorch skips
 * parameters whose .grad is None); the step counter is shared by all variables.
 */
import * as tf from "@tensorflow/tfjs";

export type NamedVariables = Record<string, tf.Variable>;

export interface AdamOptions {
  /** Default learning rate, used when step() gets none. Default 3e-4 (spec §7). */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Weight decay coefficient. Default 0. */
  weightDecay?: number;
  /** true: decoupled decay (AdamW); false: L2 added to the gradient (torch Adam). Default true. */
  decoupled?: boolean;
}

/** A tensor in the layout writeSafetensors takes. */
export interface FloatTensorData {
  shape: number[];
  data: Float32Array;
}

/** Optimizer state as plain arrays: `step` and, per variable name, the first and second moments. */
export interface AdamState {
  step: number;
  /** Keys `exp_avg.<name>` and `exp_avg_sq.<name>` (PyTorch's names for m and v). */
  tensors: Record<string, FloatTensorData>;
}

export const ADAM_DEFAULTS: Required<AdamOptions> = { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, decoupled: true };

export class Adam {
  readonly options: Required<AdamOptions>;
  /** Number of updates applied so far. */
  step = 0;
  private readonly vars: NamedVariables;
  private readonly m: Record<string, tf.Variable> = {};
  private readonly v: Record<string, tf.Variable> = {};
  /**
   * Moments on the host (Float32Array) while updates come from `applyHostGradients`; they move
   * back into the tf variables when `applyGradients` is called again.
   */
  private host: Record<string, { m: Float32Array; v: Float32Array }> | null = null;

  constructor(variables: NamedVariables, options: AdamOptions = {}) {
    this.options = { ...ADAM_DEFAULTS, ...options };
    const { beta1, beta2, eps, weightDecay } = this.options;
    if (!(beta1 >= 0 && beta1 < 1)) throw new RangeError(`Adam: beta1 must be in [0, 1), got ${beta1}`);
    if (!(beta2 >= 0 && beta2 < 1)) throw new RangeError(`Adam: beta2 must be in [0, 1), got ${beta2}`);
    if (!(eps >= 0)) throw new RangeError(`Adam: eps must be >= 0, got ${eps}`);
    if (!(weightDecay >= 0)) throw new RangeError(`Adam: weightDecay must be >= 0, got ${weightDecay}`);
    if (Object.keys(variables).length === 0) throw new Error("Adam: no variables to optimise");
    this.vars = variables;
    for (const [name, p] of Object.entries(variables)) {
      if (p.dtype !== "float32") throw new TypeError(`Adam: variable "${name}" has dtype ${p.dtype}, expected float32`);
      this.m[name] = tf.variable(tf.zerosLike(p), false);
      this.v[name] = tf.variable(tf.zerosLike(p), false);
    }
  }

  get names(): string[] {
    return Object.keys(this.vars);
  }

  /**
   * Applies one update from gradients keyed by variable name (missing or null = no gradient).
   * `lr` overrides the default learning rate for this step (the schedule's value).
   */
  applyGradients(grads: Record<string, tf.Tensor | null | undefined>, lr = this.options.lr): void {
    const { stepSize, bc2Sqrt } = this.beginStep(grads, lr);
    this.toDevice();
    const { beta1, beta2, eps, weightDecay, decoupled } = this.options;
    tf.tidy(() => {
      for (const [name, p] of Object.entries(this.vars)) {
        let g = grads[name];
        if (!g) continue;
        if (!arraysEqual(g.shape, p.shape)) throw new Error(`Adam: gradient for "${name}" has shape [${g.shape}], variable has [${p.shape}]`);
        const m = this.m[name];
        const v = this.v[name];
        if (weightDecay !== 0 && !decoupled) g = tf.add(g, tf.mul(p, weightDecay));
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(vNew), bc2Sqrt), eps);
        const base = weightDecay !== 0 && decoupled ? tf.mul(p, 1 - lr * weightDecay) : p;
        p.assign(tf.sub(base, tf.mul(tf.div(mNew, denom), stepSize)));
        m.assign(mNew);
        v.assign(vNew);
      }
    });
  }

  /**
   * The same update on the host, for gradients computed outside tfjs (e.g. by ONNX Runtime):
   * moments stay in Float32Arrays, each variable is read once and assigned once. Arithmetic is
   * float64 per element, stored as float32.
   */
  applyHostGradients(grads: Record<string, Float32Array | null | undefined>, lr = this.options.lr): void {
    const { stepSize, bc2Sqrt } = this.beginStep(grads, lr);
    this.toHost();
    const { beta1, beta2, eps, weightDecay, decoupled } = this.options;
    const decay = weightDecay !== 0 && decoupled ? 1 - lr * weightDecay : 1;
    const l2 = weightDecay !== 0 && !decoupled ? weightDecay : 0;
    for (const [name, variable] of Object.entries(this.vars)) {
      const g = grads[name];
      if (!g) continue;
      if (g.length !== variable.size) throw new Error(`Adam: gradient for "${name}" has ${g.length} values, variable [${variable.shape}] has ${variable.size}`);
      const { m, v } = this.host![name];
      const p = new Float32Array(variable.dataSync() as Float32Array);
      adamUpdate(p, g, m, v, beta1, beta2, eps, stepSize, bc2Sqrt, decay, l2);
      const value = tf.tensor(p, variable.shape, "float32");
      variable.assign(value);
      value.dispose();
    }
  }

  /** Checks the gradient names, counts the step, returns its bias-corrected step size and √(1 − β2^t). */
  private beginStep(grads: Record<string, unknown>, lr: number): { stepSize: number; bc2Sqrt: number } {
    for (const name of Object.keys(grads)) {
      if (!(name in this.vars)) throw new Error(`Adam: gradient for unknown variable "${name}"`);
    }
    this.step += 1;
    const { beta1, beta2 } = this.options;
    return { stepSize: lr / (1 - beta1 ** this.step), bc2Sqrt: Math.sqrt(1 - beta2 ** this.step) };
  }

  private toHost(): void {
    if (this.host) return;
    this.host = Object.fromEntries(this.names.map((n) => [n, { m: new Float32Array(this.m[n].dataSync() as Float32Array), v: new Float32Array(this.v[n].dataSync() as Float32Array) }]));
  }

  private toDevice(): void {
    if (!this.host) return;
    for (const n of this.names) {
      const [m, v] = [tf.tensor(this.host[n].m, this.m[n].shape), tf.tensor(this.host[n].v, this.v[n].shape)];
      this.m[n].assign(m);
      this.v[n].assign(v);
      tf.dispose([m, v]);
    }
    this.host = null;
  }

  /** Copies the state out (safe to write with writeSafetensors). */
  exportState(): AdamState {
    const tensors: Record<string, FloatTensorData> = {};
    if (this.host) {
      for (const name of this.names) {
        tensors[`exp_avg.${name}`] = { shape: [...this.m[name].shape], data: this.host[name].m.slice() };
        tensors[`exp_avg_sq.${name}`] = { shape: [...this.v[name].shape], data: this.host[name].v.slice() };
      }
      return { step: this.step, tensors };
    }
    for (const name of this.names) {
      tensors[`exp_avg.${name}`] = { shape: [...this.m[name].shape], data: this.m[name].dataSync() as Float32Array };
      tensors[`exp_avg_sq.${name}`] = { shape: [...this.v[name].shape], data: this.v[name].dataSync() as Float32Array };
    }
    return { step: this.step, tensors };
  }

  /** Restores a state from exportState() (or a checkpoint); every moment must be present with the right shape. */
  importState(state: { step: number; tensors: Record<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }> }): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`Adam.importState: bad step ${state.step}`);
    const updates: [tf.Variable, tf.Tensor][] = [];
    for (const name of this.names) {
      for (const [key, target] of [[`exp_avg.${name}`, this.m[name]], [`exp_avg_sq.${name}`, this.v[name]]] as const) {
        const t = state.tensors[key];
        if (!t) throw new Error(`Adam.importState: missing tensor "${key}"`);
        if (!(t.data instanceof Float32Array)) throw new Error(`Adam.importState: tensor "${key}" is not float32`);
        if (!arraysEqual(t.shape, target.shape)) throw new Error(`Adam.importState: tensor "${key}" has shape [${t.shape}], expected [${target.shape}]`);
        updates.push([target, tf.tensor(t.data, t.shape, "float32")]);
      }
    }
    for (const [target, value] of updates) {
      target.assign(value);
      value.dispose();
    }
    this.host = null;
    this.step = state.step;
  }

  /** Frees the moment tensors (not the optimised variables). */
  dispose(): void {
    for (const name of this.names) {
      this.m[name].dispose();
      this.v[name].dispose();
    }
  }
}

/** One Adam step over flat arrays, in place (a small monomorphic loop the JIT compiles well). */
function adamUpdate(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, beta1: number, beta2: number, eps: number, stepSize: number, bc2Sqrt: number, decay: number, l2: number): void {
  const a1 = 1 - beta1;
  const a2 = 1 - beta2;
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const pi = p[i];
    const gi = g[i] + l2 * pi;
    const mi = beta1 * m[i] + a1 * gi;
    const vi = beta2 * v[i] + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
  }
}

export function arraysEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
