import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync, openSync, writeSync, closeSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  SafetensorsCheckpoint,
  SafetensorsFile,
  bf16ToF32,
  f16ToF32,
  f32ToBF16,
  f32ToF16,
  readSafetensors,
  writeSafetensors,
} from "./safetensors.js";

const tmp = () => mkdtempSync(join(tmpdir(), "st-"));

/** Builds a safetensors file byte by byte, independently of writeSafetensors. */
function handMade(header: object, data: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

describe("half-precision conversions", () => {
  it("decodes known IEEE half bit patterns", () => {
    const bits = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x7c00, 0xfc00, 0x3555, 0x0000, 0x8000]);
    const f = f16ToF32(bits);
    expect(Array.from(f.slice(0, 5))).toEqual([1, -2, 65504, 2 ** -24, 2 ** -14]);
    expect(f[5]).toBe(Infinity);
    expect(f[6]).toBe(-Infinity);
    expect(f[7]).toBeCloseTo(0.33325195, 7);
    expect(Object.is(f[9], -0)).toBe(true);
    expect(Number.isNaN(f16ToF32(new Uint16Array([0x7e00]))[0])).toBe(true);
  });

  it("encodes float32 to half with round-to-nearest-even and overflow to inf", () => {
    const v = new Float32Array([1, -2, 65504, 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000, 2 ** -26, 0.1]);
    const h = f32ToF16(v);
    expect(h[0]).toBe(0x3c00);
    expect(h[1]).toBe(0xc000);
    expect(h[2]).toBe(0x7bff);
    expect(h[3]).toBe(0x0001);
    expect(h[4]).toBe(0x3c00); // tie → even
    expect(h[5]).toBe(0x3c02); // tie → even (up)
    expect(h[6]).toBe(0x7c00);
    expect(h[7]).toBe(0x0000);
    expect(h[8]).toBe(0x2e66);
  });

  it("bf16 keeps the upper half of float32 with rounding", () => {
    const v = new Float32Array([1, -3.5, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.1415927]);
    const b = f32ToBF16(v);
    expect(Array.from(b.slice(0, 4))).toEqual([0x3f80, 0xc060, 0x3f80, 0x3f82]);
    expect(bf16ToF32(b)[4]).toBe(3.140625);
  });

  it("round-trips every finite half value", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = f16ToF32(all);
    const back = f32ToF16(f);
    for (let i = 0; i < 65536; i++) {
      const e = (i >> 10) & 0x1f;
      if (e === 31 && i & 0x3ff) continue; // NaN payloads
      if (back[i] !== i) throw new Error(`half ${i.toString(16)} → ${f[i]} → ${back[i].toString(16)}`);
    }
  });
});

describe("SafetensorsFile", () => {
  it("reads a hand-built file with several dtypes and metadata", () => {
    const dir = tmp();
    const f32 = Buffer.from(new Float32Array([1.5, -2, 3, 4]).buffer);
    const i64 = Buffer.from(new BigInt64Array([7n, -1n]).buffer);
    const bf = Buffer.from(new Uint16Array([0x3f80, 0xc000]).buffer);
    const u8 = Buffer.from([0, 1, 1]);
    const data = Buffer.concat([f32, i64, bf, u8]);
    const header = {
      __metadata__: { format: "pt" },
      a: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] },
      b: { dtype: "I64", shape: [2], data_offsets: [16, 32] },
      c: { dtype: "BF16", shape: [2], data_offsets: [32, 36] },
      d: { dtype: "BOOL", shape: [3], data_offsets: [36, 39] },
    };
    const p = join(dir, "x.safetensors");
    writeFileSync(p, handMade(header, data));
    const f = SafetensorsFile.open(p);
    expect(f.metadata).toEqual({ format: "pt" });
    expect(f.keys().sort()).toEqual(["a", "b", "c", "d"]);
    expect(Array.from(f.read("a").data)).toEqual([1.5, -2, 3, 4]);
    expect(f.read("a").shape).toEqual([2, 2]);
    expect(Array.from(f.read("b").data)).toEqual([7, -1]);
    expect(f.read("b").data).toBeInstanceOf(Int32Array);
    expect(Array.from(f.read("c").data)).toEqual([1, -2]);
    expect(Array.from(f.read("d").data)).toEqual([0, 1, 1]);
    expect(() => f.read("zzz")).toThrow(/no tensor named "zzz"/);
    f.close();
  });

  it("names the fault in corrupt files", () => {
    const dir = tmp();
    const p = join(dir, "bad.safetensors");
    writeFileSync(p, handMade({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, Buffer.alloc(8)));
    expect(() => SafetensorsFile.open(p)).toThrow(/"w" runs past the end/);
    writeFileSync(p, handMade({ w: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }, Buffer.alloc(16)));
    expect(() => SafetensorsFile.open(p)).toThrow(/"w" F32\[3\] needs 12 bytes/);
    writeFileSync(p, handMade({ w: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1)));
    expect(() => SafetensorsFile.open(p)).toThrow(/unsupported dtype "Q4"/);
    writeFileSync(p, Buffer.from([1, 2, 3]));
    expect(() => SafetensorsFile.open(p)).toThrow(/too short/);
    expect(() => SafetensorsFile.open(join(dir, "none.safetensors"))).toThrow(/no such safetensors file/);
  });

  it("reads a tensor stored beyond the 4 GiB mark by offset (sparse file)", () => {
    const dir = tmp();
    const p = join(dir, "big.safetensors");
    const gap = 4 * 1024 ** 3 + 4096; // bytes of padding tensor before ours
    const header = {
      pad: { dtype: "U8", shape: [gap], data_offsets: [0, gap] },
      w: { dtype: "F32", shape: [3], data_offsets: [gap, gap + 12] },
    };
    const hb = handMade(header, Buffer.alloc(0));
    const fd = openSync(p, "w");
    writeSync(fd, hb, 0, hb.length, 0);
    writeSync(fd, Buffer.from(new Float32Array([0.25, -8, 1e9]).buffer), 0, 12, hb.length + gap);
    closeSync(fd);
    const f = SafetensorsFile.open(p);
    expect(Array.from(f.read("w").data)).toEqual([0.25, -8, 1e9]);
    f.close();
    truncateSync(p, 0);
  });
});

describe("writeSafetensors / SafetensorsCheckpoint", () => {
  it("round-trips F32, F16, BF16, I32, I64, U8 with metadata and 8-byte header alignment", () => {
    const dir = tmp();
    const p = join(dir, "model.safetensors");
    const x = new Float32Array([0.1, -1.25, 3, 65504]);
    writeSafetensors(
      p,
      {
        "z.f32": { shape: [2, 2], data: x },
        "y.f16": { shape: [4], data: x, dtype: "F16" },
        "x.bf16": { shape: [4], data: x, dtype: "BF16" },
        "w.i32": { shape: [2], data: new Int32Array([5, -6]) },
        "v.i64": { shape: [2], data: new Int32Array([9, -10]), dtype: "I64" },
        "u.u8": { shape: [2], data: new Uint8Array([3, 255]) },
      },
      { format: "pt", note: "test" },
    );
    const { tensors, metadata } = readSafetensors(dir);
    expect(metadata).toEqual({ format: "pt", note: "test" });
    expect(Array.from(tensors["z.f32"].data)).toEqual(Array.from(x));
    expect(Array.from(tensors["y.f16"].data)).toEqual(Array.from(f16ToF32(f32ToF16(x))));
    expect(tensors["y.f16"].dtype).toBe("F16");
    expect(tensors["x.bf16"].data[1]).toBe(-1.25);
    expect(Array.from(tensors["w.i32"].data)).toEqual([5, -6]);
    expect(Array.from(tensors["v.i64"].data)).toEqual([9, -10]);
    expect(Array.from(tensors["u.u8"].data)).toEqual([3, 255]);
    const f = SafetensorsFile.open(p);
    // data starts 8-aligned, tensors stored in sorted order
    expect((f.entry("u.u8").begin - 0) % 8).toBe(0);
    f.close();
  });

  it("loads a sharded checkpoint through its index and reports index faults", () => {
    const dir = tmp();
    writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), { a: { shape: [1], data: new Float32Array([1]) } });
    writeSafetensors(join(dir, "model-00002-of-00002.safetensors"), { b: { shape: [2], data: new Float32Array([2, 3]) } });
    const index = { metadata: { total_size: 12 }, weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" } };
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index));
    const ck = SafetensorsCheckpoint.open(dir);
    expect(ck.keys().sort()).toEqual(["a", "b"]);
    expect(Array.from(ck.readFloat32("b"))).toEqual([2, 3]);
    expect(ck.entry("b").file).toMatch(/00002/);
    ck.close();
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { a: "model-00001-of-00002.safetensors", c: "model-00002-of-00002.safetensors" } }));
    expect(() => SafetensorsCheckpoint.open(dir)).toThrow(/weight_map names "c"/);
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { a: "missing.safetensors" } }));
    expect(() => SafetensorsCheckpoint.open(dir)).toThrow(/missing.safetensors: no such safetensors file/);
    expect(() => SafetensorsCheckpoint.open(tmp())).toThrow(/found neither model.safetensors/);
  });

  it("rejects data that does not fit the declared shape", () => {
    expect(() => writeSafetensors(join(tmp(), "m.safetensors"), { w: { shape: [2, 3], data: new Float32Array(5) } })).toThrow(/"w": shape \[2,3\] needs 6 values, got 5/);
  });
});
