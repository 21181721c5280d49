/**
 * Static shape inference for the operators this package emits, run as each node is added to an
 * `OnnxGraph`. Training graphs are built for one concrete batch shape, so every value's shape is
 * known and the gradient rules (`autodiff.ts`) can reduce broadcast axes, pad slices and reshape
 * without shape arithmetic in the graph. Export graphs with symbolic dims ("batch") simply leave
 * shapes unknown: a node whose input shapes are unknown gets none.
 *
 * Small int64 constants (shapes, axes, split sizes) are tracked by value, and the few integer ops
 * that compute them (Shape, Concat, Squeeze, Unsqueeze, Sub, Add, Gather) are folded, so a
 * `Reshape` fed by a computed shape still gets a static output shape.
 */
import type { AttrValue, GraphNode } from "./graph.js";

type Shapes = Map<string, number[]>;
type Ints = Map<string, number[]>;

const UNARY = new Set([
  "Identity", "Neg", "Abs", "Sqrt", "Reciprocal", "Exp", "Log", "Sigmoid", "Tanh", "Erf", "Relu",
  "Cos", "Sin", "Cast", "Softmax", "LogSoftmax", "Not", "Sign", "Floor", "Round",
]);
const BINARY = new Set(["Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"]);

/** Numpy broadcasting of static shapes; throws on incompatible dims. */
export function broadcastShapes(...shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      const v = k < 0 ? 1 : s[k];
      if (v === 1) continue;
      if (d !== 1 && d !== v) throw new Error(`shapes [${shapes.map((x) => `[${x}]`).join(", ")}] do not broadcast`);
      d = v;
    }
    out.push(d);
  }
  return out;
}

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const ints = (v: AttrValue | undefined): number[] | undefined => (Array.isArray(v) ? v : undefined);
const int = (v: AttrValue | undefined, dflt: number): number => (typeof v === "number" ? v : dflt);

/** Output shape of Reshape given the target (0 copies the input dim, −1 is inferred). */
export function reshapeTarget(input: number[], target: number[]): number[] {
  const out = target.map((d, i) => (d === 0 ? input[i] : d));
  const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const total = input.reduce((a, b) => a * b, 1);
  const free = out.indexOf(-1);
  if (free >= 0) out[free] = total / known;
  if (out.reduce((a, b) => a * b, 1) !== total || !out.every(Number.isInteger)) throw new Error(`cannot reshape [${input}] to [${target}]`);
  return out;
}

/** Start/end/step of a static Slice along one axis, clamped as ONNX does (step > 0 only). */
export function sliceRange(dim: number, start: number, end: number, step: number): [number, number] {
  if (step <= 0) throw new Error(`Slice with step ${step} is not supported`);
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
  return [clamp(start), clamp(end)];
}

/** Infers the outputs of `node` into `shapes` (and folds int constants into `intValues`). */
export function inferNode(node: GraphNode, shapes: Shapes, intValues: Ints): void {
  const s = (i: number) => (node.inputs[i] ? shapes.get(node.inputs[i]) : undefined);
  const v = (i: number) => (node.inputs[i] ? intValues.get(node.inputs[i]) : undefined);
  const set = (i: number, shape: number[]): void => void shapes.set(node.outputs[i], shape);
  const setInt = (i: number, values: number[]) => {
    intValues.set(node.outputs[i], values);
    set(i, [values.length]);
  };
  const a = node.attrs;
  const op = node.opType;
  const x = s(0);

  // integer folding (shape arithmetic)
  if (op === "Shape" && x) {
    const start = norm(int(a.start, 0), x.length);
    const end = a.end === undefined ? x.length : norm(int(a.end, x.length), x.length);
    setInt(0, x.slice(start, end));
    return;
  }
  if (op === "Concat" && node.inputs.every((n) => intValues.has(n))) {
    setInt(0, node.inputs.flatMap((n) => intValues.get(n)!));
    return;
  }
  if ((op === "Add" || op === "Sub") && v(0) && v(1) && v(0)!.length === v(1)!.length) {
    const [p, q] = [v(0)!, v(1)!];
    intValues.set(node.outputs[0], p.map((e, i) => (op === "Add" ? e + q[i] : e - q[i])));
    set(0, s(0) ?? [p.length]);
    return;
  }

  if (!x && op !== "Range" && op !== "ConstantOfShape") return;
  if (UNARY.has(op)) return set(0, [...x!]);
  if (BINARY.has(op)) {
    if (s(1)) set(0, broadcastShapes(x!, s(1)!));
    return;
  }
  switch (op) {
    case "Sum":
    case "Max":
    case "Min":
    case "Mean": {
      const all = node.inputs.map((n) => shapes.get(n));
      if (all.every((t) => t)) set(0, broadcastShapes(...(all as number[][])));
      return;
    }
    case "Where":
      if (s(1) && s(2)) set(0, broadcastShapes(x!, s(1)!, s(2)!));
      return;
    case "MatMul": {
      const y = s(1);
      if (!y) return;
      if (x!.length < 2 || y.length < 2) throw new Error(`MatMul ${node.inputs}: rank-1 operands are not supported ([${x}], [${y}])`);
      if (x![x!.length - 1] !== y[y.length - 2]) throw new Error(`MatMul ${node.inputs}: inner dims differ ([${x}] · [${y}])`);
      const batch = broadcastShapes(x!.slice(0, -2), y.slice(0, -2));
      return set(0, [...batch, x![x!.length - 2], y[y.length - 1]]);
    }
    case "Reshape": {
      const t = v(1);
      if (t) set(0, reshapeTarget(x!, t));
      return;
    }
    case "Transpose": {
      const perm = ints(a.perm) ?? x!.map((_, i) => x!.length - 1 - i);
      return set(0, perm.map((p) => x![p]));
    }
    case "ReduceMean":
    case "ReduceSum":
    case "ReduceMax": {
      const axesList = op === "ReduceMean" || op === "ReduceMax" ? ints(a.axes) : v(1);
      if (!axesList && node.inputs[1]) return;
      const axes = new Set((axesList ?? x!.map((_, i) => i)).map((ax) => norm(ax, x!.length)));
      const keep = int(a.keepdims, 1) === 1;
      const out: number[] = [];
      x!.forEach((d, i) => {
        if (!axes.has(i)) out.push(d);
        else if (keep) out.push(1);
      });
      return set(0, out);
    }
    case "LayerNormalization": {
      set(0, [...x!]);
      const axis = norm(int(a.axis, -1), x!.length);
      const stat = x!.map((d, i) => (i < axis ? d : 1));
      for (let i = 1; i < node.outputs.length; i++) if (node.outputs[i]) set(i, stat);
      return;
    }
    case "Concat": {
      const all = node.inputs.map((n) => shapes.get(n));
      if (all.some((t) => !t)) return;
      const axis = norm(int(a.axis, 0), x!.length);
      const out = [...x!];
      out[axis] = all.reduce((sum, t) => sum + t![axis], 0);
      return set(0, out);
    }
    case "Split": {
      const axis = norm(int(a.axis, 0), x!.length);
      const sizes = v(1) ?? Array(node.outputs.length).fill(x![axis] / node.outputs.length);
      sizes.forEach((n, i) => {
        const out = [...x!];
        out[axis] = n;
        set(i, out);
      });
      return;
    }
    case "Slice": {
      const starts = v(1), ends = v(2);
      if (!starts || !ends) return;
      const axes = node.inputs[3] ? v(3) : starts.map((_, i) => i);
      const steps = node.inputs[4] ? v(4) : starts.map(() => 1);
      if (!axes || !steps) return;
      const out = [...x!];
      axes.forEach((ax, i) => {
        const k = norm(ax, x!.length);
        const [b, e] = sliceRange(x![k], starts[i], ends[i], steps[i]);
        out[k] = Math.max(0, Math.ceil((e - b) / steps[i]));
      });
      const src = v(0);
      if (src && x!.length === 1) {
        const [b, e] = sliceRange(x![0], starts[0], ends[0], steps[0]);
        setInt(0, src.slice(b, e));
      }
      return set(0, out);
    }
    case "Gather": {
      const idx = s(1);
      if (!idx) return;
      const axis = norm(int(a.axis, 0), x!.length);
      const src = v(0), iv = v(1);
      if (src && iv && x!.length === 1) intValues.set(node.outputs[0], iv.map((i) => src[i < 0 ? i + src.length : i]));
      return set(0, [...x!.slice(0, axis), ...idx, ...x!.slice(axis + 1)]);
    }
    case "GatherElements":
      if (s(1)) set(0, [...s(1)!]);
      return;
    case "ScatterND":
    case "ScatterElements":
      return set(0, [...x!]);
    case "Expand": {
      const t = v(1);
      if (t) set(0, broadcastShapes(x!, t));
      return;
    }
    case "Unsqueeze": {
      const axes = v(1);
      if (!axes) return;
      const rank = x!.length + axes.length;
      const at = new Set(axes.map((ax) => norm(ax, rank)));
      const out: number[] = [];
      let k = 0;
      for (let i = 0; i < rank; i++) out.push(at.has(i) ? 1 : x![k++]);
      const src = v(0);
      if (src) intValues.set(node.outputs[0], src);
      return set(0, out);
    }
    case "Squeeze": {
      const axes = node.inputs[1] ? v(1) : x!.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
      if (!axes) return;
      const at = new Set(axes.map((ax) => norm(ax, x!.length)));
      const src = v(0);
      if (src) intValues.set(node.outputs[0], src);
      return set(0, x!.filter((_, i) => !at.has(i)));
    }
    case "Pad": {
      const pads = v(1);
      if (!pads) return;
      const r = x!.length;
      return set(0, x!.map((d, i) => d + pads[i] + pads[i + r]));
    }
    case "Range": {
      const [st, li, de] = [v(0), v(1), v(2)];
      if (st && li && de) set(0, [Math.max(0, Math.ceil((li[0] - st[0]) / de[0]))]);
      return;
    }
    case "ConstantOfShape": {
      const t = v(0);
      if (t) set(0, t);
      return;
    }
    case "Tile": {
      const r = v(1);
      if (r) set(0, x!.map((d, i) => d * r[i]));
      return;
    }
    default:
      return; // unknown op: shape stays unknown
  }
}
