import { describe, expect, it } from "vitest";
import { Mulberry32 } from "@lm4lv/core";
import { parseFeatureSubspaceArgs, pca, project } from "./feature-subspace.js";

describe("feature-subspace options", () => {
  it("defaults and flags", () => {
    expect(parseFeatureSubspaceArgs([])!.train).toMatch(/\.cache\/data\/crops\/train$/);
    expect(parseFeatureSubspaceArgs([])!.pixels).toBeUndefined();
    expect(parseFeatureSubspaceArgs(["--checkpoint=c", "--train", "t", "--val", "v"])).toEqual({ checkpoint: "c", train: "t", val: "v" });
    expect(parseFeatureSubspaceArgs(["--pixels", "4"])!.pixels).toBe(4);
  });

  it.each([
    [["--k", "8"], /Unknown option '--k'/],
    [["--val"], /--val <value>' argument missing/],
    [["dir"], /unexpected argument "dir"/],
    [["--pixels", "0"], /--pixels: expected a positive integer, got 0/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseFeatureSubspaceArgs(argv as string[])).toThrow(message);
  });
});

describe("pca and project", () => {
  // rows = m + a·u + b·v with orthonormal u, v and var(a) ≫ var(b); every (a, b) comes with (a, −b), so a and b
  // are exactly uncorrelated and the principal directions are exactly u and v (closed form)
  const D = 5, s = Math.SQRT1_2;
  const m = [0.5, -1, 2, 0, 3], u = [s, s, 0, 0, 0], v = [0, 0, 0.6, 0.8, 0];
  const rng = new Mulberry32(3);
  const coeff = Array.from({ length: 100 }, () => [3 * (rng.next() - 0.5), 0.3 * (rng.next() - 0.5)]).flatMap(([a, b]) => [[a, b], [a, -b]]);
  const rows = coeff.map(([a, b]) => Float64Array.from(m, (x, j) => x + a * u[j] + b * v[j]));

  it("finds the two directions and their variances", () => {
    const { mean, variances, directions } = pca(rows, D);
    const mean2 = (f: (c: number[]) => number) => coeff.reduce((t, c) => t + f(c), 0) / coeff.length;
    const ma = mean2((c) => c[0]), mb = mean2((c) => c[1]);
    expect(variances[0]).toBeCloseTo(mean2((c) => (c[0] - ma) ** 2), 10);
    expect(variances[1]).toBeCloseTo(mean2((c) => (c[1] - mb) ** 2), 10);
    expect(Math.abs(directions[0].reduce((t, x, j) => t + x * u[j], 0))).toBeCloseTo(1, 10);
    expect(Math.abs(directions[1].reduce((t, x, j) => t + x * v[j], 0))).toBeCloseTo(1, 10);
    expect(variances[2]).toBeLessThan(1e-12);
    mean.forEach((x, j) => expect(x).toBeCloseTo(m[j] + ma * u[j] + mb * v[j], 12));
  });

  it("keeps a row whole with k = 2 and drops exactly its v-part with k = 1", () => {
    const { mean, directions } = pca(rows, D);
    const mb = coeff.reduce((t, c) => t + c[1], 0) / coeff.length;
    rows.slice(0, 5).forEach((r, i) => {
      project(r, mean, directions, 2).forEach((x, j) => expect(x).toBeCloseTo(r[j], 9));
      const residual = Array.from(r, (x, j) => x - project(r, mean, directions, 1)[j]);
      residual.forEach((x, j) => expect(x).toBeCloseTo((coeff[i][1] - mb) * v[j], 10));
    });
  });
});
