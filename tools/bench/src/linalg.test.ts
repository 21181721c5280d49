import { describe, expect, it } from "vitest";
import { Mulberry32 } from "@lm4lv/core";
import { matMul, productSingularValues, symmetricEigen, transpose } from "./linalg.js";

describe("linalg", () => {
  it("symmetricEigen: a hand-computed 2×2 ([[2, 1], [1, 2]] → 3, 1; vectors (1, 1)/√2, (1, −1)/√2)", () => {
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
    expect(values[0]).toBeCloseTo(3, 12);
    expect(values[1]).toBeCloseTo(1, 12);
    expect(Math.abs(vectors[0][0] * vectors[0][1])).toBeCloseTo(0.5, 12);
    expect(vectors[1][0] * vectors[1][1]).toBeCloseTo(-0.5, 12);
  });

  it("productSingularValues: a hand-computed case (O·B = [[2,0,0],[0,0,0],[0,3,0]] → 3, 2)", () => {
    const o = Float64Array.from([2, 0, 0, 0, 0, 1]); // 3×2
    const b = Float64Array.from([1, 0, 0, 0, 3, 0]); // 2×3
    const s = productSingularValues(o, b, 3, 2, 3);
    expect(s[0]).toBeCloseTo(3, 12);
    expect(s[1]).toBeCloseTo(2, 12);
  });

  it("productSingularValues matches the eigenvalues of the formed (OB)ᵀ(OB) on a random rank-4 product", () => {
    const rng = new Mulberry32(7);
    const n = 9, r = 4, m = 7;
    const o = Float64Array.from({ length: n * r }, () => rng.next() - 0.5);
    const b = Float64Array.from({ length: r * m }, () => rng.next() - 0.5);
    const prod = matMul(o, b, n, r, m); // n×m, formed
    const full = symmetricEigen(matMul(transpose(prod, n, m), prod, m, n, m), m).values.map((v) => Math.sqrt(Math.max(v, 0)));
    const low = productSingularValues(o, b, n, r, m);
    for (let i = 0; i < r; i++) expect(low[i]).toBeCloseTo(full[i], 9);
    for (let i = r; i < m; i++) expect(full[i]).toBeLessThan(1e-6); // rank r
  });
});
