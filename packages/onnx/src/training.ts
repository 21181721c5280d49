/**
 * Training on ONNX Runtime: a forward graph with a scalar loss, its backward pass emitted by
 * `addGradients`, run by one `InferenceSession` per step shape.
 *
 * Graph conventions (what `finishTrainingGraph` declares and `OrtTrainingSession` reads):
 *   inputs   every trainable parameter (declared with `g.param` on a graph built with
 *            `{ trainable }`), plus the batch inputs of the model (features, ids, pixels, ...)
 *   outputs  `loss` (scalar), `part.<name>` (scalars shown next to the loss),
 *            `grad.<param>` (same shape as the parameter)
 *
 * The optimiser stays outside (the trainer's Adam on its variables): the graph is fed the
 * current parameter values each step and returns their gradients.
 */
import * as ort from "onnxruntime-node";
import type { OnnxGraph } from "./graph.js";
import { addGradients } from "./autodiff.js";
import { sessionOptions } from "./session.js";
import type { OrtSessionOptions } from "./session.js";

/** Parameter values fed to a training step: the trainer's variables, read as float32. */
export interface ParamValue {
  data: Float32Array;
  shape: readonly number[];
}

export interface TrainingStepResult {
  loss: number;
  parts: Record<string, number>;
  grads: Record<string, Float32Array>;
}

/**
 * Declares `loss` (and the named parts) as outputs and appends the backward pass for every
 * trainable parameter of `g` (and any extra values in `wrt`); with `forwardOnly` no backward
 * pass (for measuring the forward alone). Returns the parameter names.
 */
export function finishTrainingGraph(g: OnnxGraph, loss: string, parts: Record<string, string> = {}, opts: { wrt?: readonly string[]; forwardOnly?: boolean } = {}): string[] {
  const wrt = opts.wrt ?? [];
  if (g.trainableParams.length === 0 && wrt.length === 0) throw new Error(`training graph ${g.name}: no trainable parameter was used`);
  g.output(loss, g.floatType, [], "loss");
  for (const [name, v] of Object.entries(parts)) g.output(v, g.floatType, [], `part.${name}`);
  if (!opts.forwardOnly) addGradients(g, { loss, wrt: [...g.trainableParams, ...wrt] });
  return [...g.trainableParams];
}

/** Floating-point operations of the graph's MatMul nodes (2·M·N·K per product), from static shapes. */
export function matmulFlops(g: OnnxGraph): number {
  let flops = 0;
  for (const n of g.graphNodeList) {
    if (n.opType !== "MatMul") continue;
    const a = g.shape(n.inputs[0]);
    const y = g.shape(n.outputs[0]);
    flops += 2 * y.reduce((p, d) => p * d, 1) * a[a.length - 1];
  }
  return flops;
}

/** One compiled training graph. */
export class OrtTrainingSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** Trainable parameter names (graph inputs with a `grad.<name>` output). */
    readonly params: readonly string[],
    /** Other inputs the caller feeds each step. */
    readonly batchInputs: readonly string[],
    readonly partNames: readonly string[],
  ) {}

  /** Compiles `g` (finished with `finishTrainingGraph`). */
  static async create(g: OnnxGraph, opts: OrtSessionOptions = {}): Promise<OrtTrainingSession> {
    const session = await ort.InferenceSession.create(g.toBytes(), sessionOptions(opts));
    const params = g.trainableParams;
    const outputs = new Set(session.outputNames);
    const forwardOnly = params.every((p) => !outputs.has(`grad.${p}`));
    if (!forwardOnly) for (const p of params) if (!outputs.has(`grad.${p}`)) throw new Error(`training graph ${g.name}: no output grad.${p} (build it with finishTrainingGraph)`);
    if (!outputs.has("loss")) throw new Error(`training graph ${g.name}: no "loss" output`);
    const batchInputs = session.inputNames.filter((n) => !params.includes(n));
    const partNames = session.outputNames.filter((n) => n.startsWith("part.")).map((n) => n.slice(5));
    return new OrtTrainingSession(session, params, batchInputs, partNames);
  }

  /** Loss, parts and gradients at the given parameter values for one batch. */
  async run(params: Record<string, ParamValue>, batch: Record<string, ort.Tensor>): Promise<TrainingStepResult> {
    const feeds: Record<string, ort.Tensor> = { ...batch };
    for (const p of this.params) {
      const v = params[p];
      if (!v) throw new Error(`training step: no value for parameter "${p}"`);
      feeds[p] = new ort.Tensor("float32", v.data, [...v.shape]);
    }
    for (const n of this.batchInputs) if (!feeds[n]) throw new Error(`training step: missing batch input "${n}"`);
    const out = await this.session.run(feeds);
    const grads: Record<string, Float32Array> = {};
    for (const p of this.params) if (out[`grad.${p}`]) grads[p] = out[`grad.${p}`].data as Float32Array;
    const parts = Object.fromEntries(this.partNames.map((n) => [n, Number(out[`part.${n}`].data[0])]));
    return { loss: Number(out.loss.data[0]), parts, grads };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
