import { afterAll, describe, expect, it } from "vitest";
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";
import { f32ToF16 } from "@lm4lv/core";
import { OnnxGraph } from "./graph.js";
import { OrtSession } from "./session.js";
import { maxAbsDiff, tempDir } from "@lm4lv/core/testing";

const dir = tempDir("onnx-graph");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** y = relu(x · W1 + b1) · W2 with seeded weights; W1 and W2 are "big", b1 small. */
function mlpGraph(): { g: OnnxGraph; w1: Float32Array; b1: Float32Array; w2: Float32Array } {
  let s = 1;
  const rnd = (n: number) => Float32Array.from({ length: n }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1);
  const w1 = rnd(8 * 16), b1 = rnd(16), w2 = rnd(16 * 4);
  const g = new OnnxGraph("mlp");
  const x = g.input("x", "float32", ["batch", 8]);
  const h = g.op("Relu", [g.op("Add", [g.op("MatMul", [x, g.initializer("w1", w1, [8, 16])]), g.initializer("b1", b1, [16])])]);
  g.output(g.op("MatMul", [h, g.initializer("w2", w2, [16, 4])]), "float32", ["batch", 4], "y");
  return { g, w1, b1, w2 };
}

function reference(x: Float32Array, w1: Float32Array, b1: Float32Array, w2: Float32Array, batch: number): Float32Array {
  const y = new Float32Array(batch * 4);
  for (let b = 0; b < batch; b++) {
    const h = new Float64Array(16);
    for (let j = 0; j < 16; j++) {
      let a = b1[j];
      for (let i = 0; i < 8; i++) a += x[b * 8 + i] * w1[i * 16 + j];
      h[j] = Math.max(0, a);
    }
    for (let k = 0; k < 4; k++) for (let j = 0; j < 16; j++) y[b * 4 + k] += h[j] * w2[j * 4 + k];
  }
  return y;
}

describe("OnnxGraph", () => {
  it("builds a model that ONNX Runtime runs with symbolic batch", async () => {
    const { g, w1, b1, w2 } = mlpGraph();
    const path = g.save(join(dir, "inline.onnx")).path;
    expect(g.initializerCount).toBe(3);
    const s = await OrtSession.create(path, { intraOpThreads: 1 });
    for (const batch of [1, 3]) {
      const x = Float32Array.from({ length: batch * 8 }, (_, i) => Math.sin(i));
      const y = (await s.run({ x: new ort.Tensor("float32", x, [batch, 8]) })).y;
      expect(y.dims).toEqual([batch, 4]);
      expect(maxAbsDiff(y.data as Float32Array, reference(x, w1, b1, w2, batch))).toBeLessThan(1e-5);
    }
    s.dispose();
  });

  it("moves initializers above the threshold to an external data file with aligned offsets", async () => {
    const { g, w1, b1, w2 } = mlpGraph();
    const inline = g.toBytes();
    const saved = g.save(join(dir, "ext.onnx"), { externalAbove: 100 }); // w1 (512 B) and w2 (256 B); b1 (64 B) stays
    expect(saved.externalCount).toBe(2);
    expect(saved.externalPath).toBe(join(dir, "ext.onnx.data"));
    expect(statSync(saved.path).size).toBeLessThan(inline.byteLength - 600);

    // The TensorProtos name the side file, offsets and lengths; the bytes there are the weights.
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(saved.path));
    const side = readFileSync(saved.externalPath!);
    const byName = new Map(model.graph!.initializer!.map((t) => [t.name, t]));
    for (const [name, values] of [["w1", w1], ["w2", w2]] as const) {
      const t = byName.get(name)!;
      expect(t.dataLocation).toBe(onnxProto.onnx.TensorProto.DataLocation.EXTERNAL);
      const kv = Object.fromEntries(t.externalData!.map((e) => [e.key, e.value]));
      expect(kv.location).toBe("ext.onnx.data");
      const offset = Number(kv.offset);
      expect(offset % 4096).toBe(0);
      expect(Number(kv.length)).toBe(values.byteLength);
      expect(new Float32Array(side.buffer.slice(side.byteOffset + offset, side.byteOffset + offset + values.byteLength))).toEqual(values);
    }
    expect(byName.get("b1")!.rawData!.byteLength).toBe(64);

    const s = await OrtSession.create(saved.path, { intraOpThreads: 1 });
    const x = Float32Array.from({ length: 16 }, (_, i) => Math.cos(i));
    expect(maxAbsDiff((await s.run({ x: new ort.Tensor("float32", x, [2, 8]) })).y.data as Float32Array, reference(x, w1, b1, w2, 2))).toBeLessThan(1e-5);
    s.dispose();
  });

  it("rejects reused names, wrong sizes and missing inputs by name", async () => {
    const g = new OnnxGraph("bad");
    g.input("x", "float32", [2]);
    expect(() => g.input("x", "float32", [2])).toThrow(/"x" is already used/);
    expect(() => g.initializer("w", new Float32Array(3), [2, 2])).toThrow(/"w" has 3 values, shape \[2,2\] needs 4/);
    const { g: ok } = mlpGraph();
    const s = await OrtSession.create(ok.save(join(dir, "m.onnx")).path);
    await expect(s.run({})).rejects.toThrow(/missing input "x"/);
    s.dispose();
    await expect(s.run({})).rejects.toThrow(/session was disposed/);
    await expect(OrtSession.create(join(dir, "nope.onnx"))).rejects.toThrow(/nope\.onnx/);
  });

  it("produces lazy initializers only when writing, one at a time, and keeps float16 / uint8 types", async () => {
    const w = Float32Array.from({ length: 64 }, (_, i) => (i % 7) - 3); // [8, 8], exact in float16
    const half = f32ToF16(w);
    const calls: string[] = [];
    const g = new OnnxGraph("lazy");
    const x = g.input("x", "float32", ["batch", 8]);
    const k16 = g.lazyInitializer("k16", "float16", [8, 8], () => (calls.push("k16"), half));
    const k32 = g.lazyInitializer("k32", "float32", [8, 8], () => (calls.push("k32"), w));
    const mask = g.initializer("mask", Uint8Array.from({ length: 8 }, (_, i) => i % 2), [8], "uint8");
    const y = g.op("Add", [g.op("MatMul", [x, g.op("Cast", [k16], { to: 1 })]), g.op("MatMul", [x, k32])]);
    g.output(g.op("Mul", [y, g.op("Cast", [mask], { to: 1 })]), "float32", ["batch", 8], "y");
    expect(calls).toEqual([]);
    expect(g.initializerBytes).toBe(128 + 256 + 8);
    const saved = g.save(join(dir, "lazy.onnx"), { externalAbove: 100 });
    expect(calls).toEqual(["k16", "k32"]); // in declaration order, once each
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(saved.path));
    const T = onnxProto.onnx.TensorProto.DataType;
    expect(model.graph!.initializer!.map((t) => [t.name, t.dataType])).toEqual([["k16", T.FLOAT16], ["k32", T.FLOAT], ["mask", T.UINT8]]);
    const s = await OrtSession.create(saved.path, { intraOpThreads: 1 });
    const xv = Float32Array.from({ length: 8 }, (_, i) => i - 2);
    const out = (await s.run({ x: new ort.Tensor("float32", xv, [1, 8]) })).y.data as Float32Array;
    for (let j = 0; j < 8; j++) {
      let a = 0;
      for (let i = 0; i < 8; i++) a += 2 * xv[i] * w[i * 8 + j];
      expect(out[j]).toBeCloseTo(a * (j % 2), 5);
    }
    s.dispose();
    // a producer that breaks its declaration is named
    const bad = new OnnxGraph("bad_lazy");
    bad.lazyInitializer("short", "float32", [4], () => new Float32Array(3));
    bad.lazyInitializer("typed", "uint8", [2], () => new Float32Array(2));
    expect(() => bad.toBytes()).toThrow(/lazy initializer "short" produced 3 values, shape \[4\] needs 4/);
    const bad2 = new OnnxGraph("bad_type");
    bad2.lazyInitializer("typed", "uint8", [2], () => new Float32Array(2));
    expect(() => bad2.toBytes()).toThrow(/"typed" is declared uint8 but produced a Float32Array/);
    expect(() => new OnnxGraph("t").initializer("u", new Float32Array(2), [2], "uint8")).toThrow(/"u" is declared uint8 but its data is a Float32Array/);
  });
});
