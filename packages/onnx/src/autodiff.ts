/**
 * Reverse-mode automatic differentiation of an `OnnxGraph`, emitting the backward pass as more
 * nodes of the same graph (standard ai.onnx opset-17 operators only, so the stock
 * onnxruntime-node CPU build runs it):
 *
 *   const g = new OnnxGraph("train", { trainable: ["w"] });   // "w" becomes a graph input
 *   const loss = ...forward nodes...;                          // a scalar
 *   const grads = addGradients(g, { loss, wrt: ["w"] });       // { w: "grad.w" }, declared as outputs
 *
 * Design: the classic tape-free "gradient graph" construction (as in ONNX Runtime training's
 * gradient builder, PyTorch's autograd formulas, and tfjs's gradient registry): walk the forward
 * nodes in reverse topological order, and for each node on a path from a differentiated value to
 * the loss emit its vector-Jacobian product with one rule per operator (`RULES` below). Gradients
 * reaching a value along several paths are summed (`Sum`). Shapes are static (see `shapes.ts`):
 * broadcast reductions, slice padding and reshapes are constants, so no shape arithmetic runs in
 * the graph and ONNX Runtime can pre-plan every buffer. Forward values a rule needs (activations,
 * softmax outputs) are simply re-used by name: ONNX Runtime keeps them alive until the backward
 * nodes that read them have run, which is what a training framework's "saved tensors" are.
 *
 * Not covered (a node on the gradient path with one of these throws, naming the node):
 * operators without a rule (e.g. Conv, Tile, Max/Min, ArgMax); gradients through an exponent
 * (`Pow`'s second input), through integer values or conditions; `Gather` / `Slice` with
 * negative indices or steps other than 1; symbolic (unknown) shapes; higher-order gradients.
 */
import type { GraphNode } from "./graph.js";
import type { OnnxGraph } from "./graph.js";
import { sliceRange } from "./shapes.js";

export interface GradientOptions {
  /** The value to differentiate: a scalar (shape [] or [1]). */
  loss: string;
  /** Values to differentiate the loss with respect to (graph inputs or any float value). */
  wrt: readonly string[];
  /** Output name of d loss / d v. Default `grad.<v>`. */
  gradName?: (value: string) => string;
}

/** What a rule sees of one forward node. */
interface RuleContext {
  g: OnnxGraph;
  node: GraphNode;
  /** Gradients of the node's outputs (null where nothing flows back). */
  dy: (string | null)[];
  /** Whether input i needs a gradient. */
  need: boolean[];
}

/** Returns one gradient per input (null/undefined where none is needed). */
type Rule = (c: RuleContext) => (string | null | undefined)[];

/** Operators whose outputs carry no gradient (integer, boolean or piecewise-constant results). */
const NON_DIFFERENTIABLE = new Set([
  "Shape", "Size", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Not",
  "Range", "ConstantOfShape", "ArgMax", "ArgMin", "Sign", "Floor", "Round",
]);

/** Inputs through which a gradient may flow, by operator (default: all). */
const DIFFERENTIABLE_INPUTS: Record<string, number[]> = {
  Reshape: [0], Squeeze: [0], Unsqueeze: [0], Expand: [0], Slice: [0], Split: [0], Pad: [0],
  Gather: [0], GatherElements: [0], Where: [1, 2], Pow: [0, 1], ReduceSum: [0], Transpose: [0],
};

const FLOAT_TYPES = new Set([1, 11]); // FLOAT, DOUBLE

function differentiableInputs(node: GraphNode): number[] {
  if (NON_DIFFERENTIABLE.has(node.opType)) return [];
  if (node.opType === "Cast") return FLOAT_TYPES.has(node.attrs.to as number) ? [0] : [];
  return DIFFERENTIABLE_INPUTS[node.opType] ?? node.inputs.map((_, i) => i);
}

// ---------------------------------------------------------------------------------------------
// Helpers

const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Sums `d` over the axes that broadcasting expanded, back to `to` (ONNX/numpy broadcasting). */
export function reduceTo(g: OnnxGraph, d: string, to: readonly number[]): string {
  const from = g.shape(d);
  if (same(from, to)) return d;
  const lead = from.length - to.length;
  if (lead < 0) throw new Error(`reduceTo: gradient [${from}] has lower rank than its value [${to}]`);
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    if (i < lead || (to[i - lead] === 1 && from[i] !== 1)) axes.push(i);
    else if (to[i - lead] !== from[i]) throw new Error(`reduceTo: gradient [${from}] does not broadcast from [${to}]`);
  }
  const r = axes.length ? g.op("ReduceSum", [d, g.i64(axes)], { keepdims: 1 }) : d;
  return same(g.shape(r), to) ? r : g.op("Reshape", [r, g.i64([...to])]);
}

/** Zeros of a static shape in the graph's float type. */
function zeros(g: OnnxGraph, shape: readonly number[]): string {
  return g.op("Expand", [g.f32([0]), g.i64([...shape])]);
}

/** Swaps the last two axes. */
function transposeLast(g: OnnxGraph, x: string): string {
  const r = g.shape(x).length;
  const perm = Array.from({ length: r }, (_, i) => i);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return g.op("Transpose", [x], { perm });
}

function attrInt(node: GraphNode, name: string, dflt: number): number {
  const v = node.attrs[name];
  return typeof v === "number" ? v : dflt;
}

function attrFloat(node: GraphNode, name: string, dflt: number): number {
  const v = node.attrs[name];
  return v && typeof v === "object" && "float" in v ? v.float : dflt;
}

/** Reduce axes of a ReduceMean/ReduceSum node (attribute in opset 17 for Mean, input for Sum). */
function reduceAxes(g: OnnxGraph, node: GraphNode, rank: number): number[] {
  const list = node.opType === "ReduceSum" ? (node.inputs[1] ? g.intValue(node.inputs[1]) : undefined) : (node.attrs.axes as number[] | undefined);
  if (node.opType === "ReduceSum" && node.inputs[1] && !list) throw new Error(`${node.opType}: axes input "${node.inputs[1]}" is not a constant`);
  return (list ?? Array.from({ length: rank }, (_, i) => i)).map((a) => normAxis(a, rank));
}

// ---------------------------------------------------------------------------------------------
// Rules: d loss / d input_i from d loss / d output. Shapes in comments: x the input, y the output.

const unbroadcastBinary = (c: RuleContext, da: () => string, db: () => string) => {
  const { g, node } = c;
  return [
    c.need[0] ? reduceTo(g, da(), g.shape(node.inputs[0])) : null,
    c.need[1] ? reduceTo(g, db(), g.shape(node.inputs[1])) : null,
  ];
};

const RULES: Record<string, Rule> = {
  Identity: (c) => [c.dy[0]],
  Cast: (c) => [c.dy[0]],
  Neg: (c) => [c.g.op("Neg", [c.dy[0]!])],
  Add: (c) => unbroadcastBinary(c, () => c.dy[0]!, () => c.dy[0]!),
  Sub: (c) => unbroadcastBinary(c, () => c.dy[0]!, () => c.g.op("Neg", [c.dy[0]!])),
  Mul: (c) => {
    const [a, b] = c.node.inputs;
    return unbroadcastBinary(c, () => c.g.op("Mul", [c.dy[0]!, b]), () => c.g.op("Mul", [c.dy[0]!, a]));
  },
  Div: (c) => {
    // y = a / b: da = dy / b, db = −dy · y / b
    const [, b] = c.node.inputs;
    const y = c.node.outputs[0];
    return unbroadcastBinary(c, () => c.g.op("Div", [c.dy[0]!, b]), () => c.g.op("Neg", [c.g.op("Div", [c.g.op("Mul", [c.dy[0]!, y]), b])]));
  },
  Sum: (c) => c.node.inputs.map((x, i) => (c.need[i] ? reduceTo(c.g, c.dy[0]!, c.g.shape(x)) : null)),
  Pow: (c) => {
    // y = a^p: da = dy · p · a^(p−1); the exponent is not differentiated
    if (c.need[1]) throw new Error(`Pow: no gradient with respect to the exponent "${c.node.inputs[1]}"`);
    const { g } = c;
    const [a, p] = c.node.inputs;
    const da = g.op("Mul", [g.op("Mul", [c.dy[0]!, p]), g.op("Pow", [a, g.op("Sub", [p, g.f32([1])])])]);
    return [reduceTo(g, da, g.shape(a)), null];
  },
  Sqrt: (c) => [c.g.op("Div", [c.g.op("Mul", [c.dy[0]!, c.g.f32([0.5])]), c.node.outputs[0]])],
  Reciprocal: (c) => {
    const y = c.node.outputs[0];
    return [c.g.op("Neg", [c.g.op("Mul", [c.dy[0]!, c.g.op("Mul", [y, y])])])];
  },
  Exp: (c) => [c.g.op("Mul", [c.dy[0]!, c.node.outputs[0]])],
  Log: (c) => [c.g.op("Div", [c.dy[0]!, c.node.inputs[0]])],
  Sigmoid: (c) => {
    const { g } = c;
    const y = c.node.outputs[0];
    return [g.op("Mul", [c.dy[0]!, g.op("Mul", [y, g.op("Sub", [g.f32([1]), y])])])];
  },
  Tanh: (c) => {
    const { g } = c;
    const y = c.node.outputs[0];
    return [g.op("Mul", [c.dy[0]!, g.op("Sub", [g.f32([1]), g.op("Mul", [y, y])])])];
  },
  Erf: (c) => {
    // d erf(x) = 2/√π · exp(−x²)
    const { g } = c;
    const x = c.node.inputs[0];
    const e = g.op("Exp", [g.op("Neg", [g.op("Mul", [x, x])])]);
    return [g.op("Mul", [c.dy[0]!, g.op("Mul", [e, g.f32([2 / Math.sqrt(Math.PI)])])])];
  },
  Relu: (c) => [c.g.op("Where", [c.g.op("Greater", [c.node.inputs[0], c.g.f32([0])]), c.dy[0]!, c.g.f32([0])])],
  Abs: (c) => [c.g.op("Mul", [c.dy[0]!, c.g.op("Sign", [c.node.inputs[0]])])],
  MatMul: (c) => {
    // y [..., M, N] = a [..., M, K] · b [..., K, N]
    const { g } = c;
    const [a, b] = c.node.inputs;
    const dy = c.dy[0]!;
    const sa = g.shape(a), sb = g.shape(b);
    const da = c.need[0] ? reduceTo(g, g.op("MatMul", [dy, transposeLast(g, b)]), sa) : null;
    let db: string | null = null;
    if (c.need[1]) {
      if (sb.length === 2 && sa.length > 2) {
        // batch folded into M: db = a2ᵀ · dy2 with a2 [B·M, K], dy2 [B·M, N]
        const k = sa[sa.length - 1], n = sb[1];
        const a2 = g.op("Reshape", [a, g.i64([-1, k])]);
        const dy2 = g.op("Reshape", [dy, g.i64([-1, n])]);
        db = g.op("MatMul", [g.op("Transpose", [a2], { perm: [1, 0] }), dy2]);
      } else db = reduceTo(g, g.op("MatMul", [transposeLast(g, a), dy]), sb);
    }
    return [da, db];
  },
  Softmax: (c) => {
    // dx = y · (dy − Σ dy·y)
    const { g } = c;
    const y = c.node.outputs[0];
    const axis = normAxis(attrInt(c.node, "axis", -1), g.shape(y).length);
    const dot = g.op("ReduceSum", [g.op("Mul", [c.dy[0]!, y]), g.i64([axis])], { keepdims: 1 });
    return [g.op("Mul", [y, g.op("Sub", [c.dy[0]!, dot])])];
  },
  LogSoftmax: (c) => {
    // dx = dy − softmax · Σ dy
    const { g } = c;
    const y = c.node.outputs[0];
    const axis = normAxis(attrInt(c.node, "axis", -1), g.shape(y).length);
    const total = g.op("ReduceSum", [c.dy[0]!, g.i64([axis])], { keepdims: 1 });
    return [g.op("Sub", [c.dy[0]!, g.op("Mul", [g.op("Exp", [y]), total])])];
  },
  ReduceSum: (c) => [reduceBack(c, 1)],
  ReduceMean: (c) => {
    const { g, node } = c;
    const sx = g.shape(node.inputs[0]);
    const count = reduceAxes(g, node, sx.length).reduce((n, a) => n * sx[a], 1);
    return [reduceBack(c, 1 / count)];
  },
  LayerNormalization: (c) => {
    // y = x̂ · scale + bias, x̂ = (x − mean) · inv over axes [axis, rank)
    // dx = inv · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), dx̂ = dy · scale
    const { g, node } = c;
    if (node.outputs.slice(1).some((o, i) => o && c.dy[i + 1])) throw new Error("LayerNormalization: gradients of the Mean/InvStdDev outputs are not supported");
    const [x, scale, bias] = node.inputs;
    const sx = g.shape(x);
    const axis = normAxis(attrInt(node, "axis", -1), sx.length);
    const axes = Array.from({ length: sx.length - axis }, (_, i) => axis + i);
    const eps = attrFloat(node, "epsilon", 1e-5);
    const mean = (v: string) => g.op("ReduceMean", [v], { axes, keepdims: 1 });
    const dy = c.dy[0]!;
    const xc = g.op("Sub", [x, mean(x)]);
    const inv = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [mean(g.op("Mul", [xc, xc])), g.f32([eps])])])]);
    const xhat = g.op("Mul", [xc, inv]);
    const out: (string | null)[] = [null, null, null];
    if (c.need[0]) {
      const dxhat = g.op("Mul", [dy, scale]);
      const inner = g.op("Sub", [g.op("Sub", [dxhat, mean(dxhat)]), g.op("Mul", [xhat, mean(g.op("Mul", [dxhat, xhat]))])]);
      out[0] = g.op("Mul", [inv, inner]);
    }
    if (c.need[1]) out[1] = reduceTo(g, g.op("Mul", [dy, xhat]), g.shape(scale));
    if (bias && c.need[2]) out[2] = reduceTo(g, dy, g.shape(bias));
    return out;
  },
  Reshape: (c) => [c.g.op("Reshape", [c.dy[0]!, c.g.i64(c.g.shape(c.node.inputs[0]))])],
  Squeeze: (c) => [c.g.op("Reshape", [c.dy[0]!, c.g.i64(c.g.shape(c.node.inputs[0]))])],
  Unsqueeze: (c) => [c.g.op("Reshape", [c.dy[0]!, c.g.i64(c.g.shape(c.node.inputs[0]))])],
  Transpose: (c) => {
    const rank = c.g.shape(c.node.inputs[0]).length;
    const perm = (c.node.attrs.perm as number[] | undefined) ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => (inverse[p] = i));
    return [c.g.op("Transpose", [c.dy[0]!], { perm: inverse })];
  },
  Expand: (c) => [reduceTo(c.g, c.dy[0]!, c.g.shape(c.node.inputs[0]))],
  Concat: (c) => {
    const { g, node } = c;
    const rank = g.shape(node.inputs[0]).length;
    const axis = normAxis(attrInt(node, "axis", 0), rank);
    const sizes = node.inputs.map((x) => g.shape(x)[axis]);
    const parts = g.node("Split", [c.dy[0]!, g.i64(sizes)], { axis }, sizes.length);
    return parts.map((p, i) => (c.need[i] ? p : null));
  },
  Split: (c) => {
    const { g, node } = c;
    const axis = normAxis(attrInt(node, "axis", 0), g.shape(node.inputs[0]).length);
    const parts = node.outputs.map((o, i) => c.dy[i] ?? zeros(g, g.shape(o)));
    return [parts.length === 1 ? parts[0] : g.op("Concat", parts, { axis })];
  },
  Slice: (c) => {
    // dx = dy padded with zeros back to x's shape
    const { g, node } = c;
    const sx = g.shape(node.inputs[0]);
    const starts = g.intValue(node.inputs[1]), ends = g.intValue(node.inputs[2]);
    const axes = node.inputs[3] ? g.intValue(node.inputs[3]) : starts?.map((_, i) => i);
    const steps = node.inputs[4] ? g.intValue(node.inputs[4]) : starts?.map(() => 1);
    if (!starts || !ends || !axes || !steps) throw new Error(`Slice: starts/ends/axes/steps of "${node.outputs[0]}" must be constants`);
    const pads = new Array<number>(2 * sx.length).fill(0);
    axes.forEach((ax, i) => {
      if (steps[i] !== 1) throw new Error(`Slice: gradient needs step 1, got ${steps[i]}`);
      const k = normAxis(ax, sx.length);
      const [b, e] = sliceRange(sx[k], starts[i], ends[i], 1);
      pads[k] = b;
      pads[k + sx.length] = sx[k] - Math.max(b, e);
    });
    return [g.op("Pad", [c.dy[0]!, g.i64(pads)], { mode: "constant" })];
  },
  Gather: (c) => {
    // axis 0: dx = scatter-add of dy rows into zeros (repeated indices add up)
    const { g, node } = c;
    const [data, indices] = node.inputs;
    if (attrInt(node, "axis", 0) !== 0) throw new Error(`Gather "${node.outputs[0]}": gradient only for axis 0`);
    const idx = g.op("Unsqueeze", [g.op("Cast", [indices], { to: 7 }), g.i64([-1])]); // [..., 1] int64
    return [g.op("ScatterND", [zeros(g, g.shape(data)), idx, c.dy[0]!], { reduction: "add" }), null];
  },
  GatherElements: (c) => {
    const { g, node } = c;
    const [data, indices] = node.inputs;
    const axis = attrInt(node, "axis", 0);
    return [g.op("ScatterElements", [zeros(g, g.shape(data)), indices, c.dy[0]!], { axis, reduction: "add" }), null];
  },
  Where: (c) => {
    const { g, node } = c;
    const [cond, a, b] = node.inputs;
    const zero = g.f32([0]);
    return [
      null,
      c.need[1] ? reduceTo(g, g.op("Where", [cond, c.dy[0]!, zero]), g.shape(a)) : null,
      c.need[2] ? reduceTo(g, g.op("Where", [cond, zero, c.dy[0]!]), g.shape(b)) : null,
    ];
  },
};

/** ReduceSum/ReduceMean backward: dy broadcast back over the reduced axes, times `scale`. */
function reduceBack(c: RuleContext, scale: number): string {
  const { g, node } = c;
  const sx = g.shape(node.inputs[0]);
  const axes = new Set(reduceAxes(g, node, sx.length));
  const kept = sx.map((d, i) => (axes.has(i) ? 1 : d));
  let d = g.op("Reshape", [c.dy[0]!, g.i64(kept)]);
  if (scale !== 1) d = g.op("Mul", [d, g.f32([scale])]);
  return g.op("Expand", [d, g.i64(sx)]);
}

/** Operators with a gradient rule. */
export const DIFFERENTIABLE_OPS: readonly string[] = Object.keys(RULES);

/**
 * Emits the backward pass of `loss` with respect to `wrt` into `g` and declares one output per
 * value, `grad.<v>` by default, with the value's shape. Returns the output names by value.
 * A value the loss does not depend on gets a zero gradient.
 */
export function addGradients(g: OnnxGraph, opts: GradientOptions): Record<string, string> {
  const nodes = [...g.graphNodeList];
  const lossShape = g.shape(opts.loss);
  if (lossShape.reduce((a, b) => a * b, 1) !== 1) throw new Error(`addGradients: loss "${opts.loss}" has shape [${lossShape}], expected a scalar`);

  // Forward: which values depend on a differentiated value.
  const requires = new Set(opts.wrt);
  for (const n of nodes) {
    if (differentiableInputs(n).some((i) => requires.has(n.inputs[i]))) n.outputs.forEach((o) => o && requires.add(o));
  }
  if (!requires.has(opts.loss)) throw new Error(`addGradients: loss "${opts.loss}" does not depend on any of ${opts.wrt.join(", ")}`);

  // Backward: accumulate gradients node by node, last node first.
  const grads = new Map<string, string[]>();
  const push = (v: string, d: string) => grads.set(v, [...(grads.get(v) ?? []), d]);
  const total = (v: string): string | null => {
    const list = grads.get(v);
    if (!list?.length) return null;
    const t = list.length === 1 ? list[0] : g.op("Sum", list);
    grads.set(v, [t]);
    return t;
  };
  push(opts.loss, g.op("Expand", [g.f32([1]), g.i64(lossShape)]));
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    const diff = differentiableInputs(node);
    const need = node.inputs.map((x, k) => x !== "" && requires.has(x) && diff.includes(k));
    if (!need.some(Boolean)) continue;
    const dy = node.outputs.map((o) => (o ? total(o) : null));
    if (dy.every((d) => d === null)) continue;
    const rule = RULES[node.opType];
    if (!rule) throw new Error(`addGradients: no gradient rule for ${node.opType} (node output "${node.outputs[0]}"); differentiable ops: ${DIFFERENTIABLE_OPS.join(", ")}`);
    let dx: (string | null | undefined)[];
    try {
      dx = rule({ g, node, dy, need });
    } catch (e) {
      throw new Error(`addGradients: ${node.opType} → "${node.outputs[0]}": ${(e as Error).message}`);
    }
    node.inputs.forEach((x, k) => {
      const d = dx[k];
      if (need[k] && d) push(x, d);
    });
  }

  const out: Record<string, string> = {};
  for (const v of opts.wrt) {
    const name = opts.gradName?.(v) ?? `grad.${v}`;
    const shape = g.shape(v);
    out[v] = g.output(total(v) ?? zeros(g, shape), g.floatType, shape, name);
  }
  return out;
}
