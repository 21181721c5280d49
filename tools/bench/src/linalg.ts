/**
 * Small dense float64 linear algebra for the analysis tools (feature-subspace, copy-circuit): a
 * symmetric eigensolver and the singular values of a low-rank product, row-major Float64Arrays.
 */

/** Eigenvectors of a symmetric D×D matrix (cyclic Jacobi, float64), sorted by decreasing eigenvalue. */
export function symmetricEigen(c: Float64Array, D: number): { values: number[]; vectors: Float64Array[] } {
  const a = Float64Array.from(c);
  const v = new Float64Array(D * D);
  for (let i = 0; i < D; i++) v[i * D + i] = 1;
  for (let sweep = 0; sweep < 30; sweep++) {
    let off = 0;
    for (let p = 0; p < D; p++) for (let q = p + 1; q < D; q++) off += a[p * D + q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < D; p++) {
      for (let q = p + 1; q < D; q++) {
        const apq = a[p * D + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * D + q] - a[p * D + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1);
        const sn = t * cs;
        for (let k = 0; k < D; k++) {
          const akp = a[k * D + p], akq = a[k * D + q];
          a[k * D + p] = cs * akp - sn * akq;
          a[k * D + q] = sn * akp + cs * akq;
        }
        for (let k = 0; k < D; k++) {
          const apk = a[p * D + k], aqk = a[q * D + k];
          a[p * D + k] = cs * apk - sn * aqk;
          a[q * D + k] = sn * apk + cs * aqk;
        }
        for (let k = 0; k < D; k++) {
          const vkp = v[k * D + p], vkq = v[k * D + q];
          v[k * D + p] = cs * vkp - sn * vkq;
          v[k * D + q] = sn * vkp + cs * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: D }, (_, i) => i).sort((i, j) => a[j * D + j] - a[i * D + i]);
  return { values: order.map((i) => a[i * D + i]), vectors: order.map((i) => Float64Array.from({ length: D }, (_, k) => v[k * D + i])) };
}

/** Row-major product of A (n×k) and B (k×m). */
export function matMul(a: Float64Array, b: Float64Array, n: number, k: number, m: number): Float64Array {
  const c = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let p = 0; p < k; p++) {
    const aip = a[i * k + p];
    if (aip === 0) continue;
    for (let j = 0; j < m; j++) c[i * m + j] += aip * b[p * m + j];
  }
  return c;
}

/** Transpose of A (n×m). */
export function transpose(a: Float64Array, n: number, m: number): Float64Array {
  const t = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) t[j * n + i] = a[i * m + j];
  return t;
}

/**
 * Singular values (decreasing) of the product O·B, O (n×r) and B (r×m), without forming the n×m
 * matrix: their squares are the non-zero eigenvalues of (OB)(OB)ᵀ, which equal those of the r×r
 * symmetric Lᵀ(OᵀO)L with B·Bᵀ = L·Lᵀ. B·Bᵀ is factored by its eigen-decomposition, so a
 * rank-deficient B is fine. r values are returned (zeros beyond the rank).
 */
export function productSingularValues(o: Float64Array, b: Float64Array, n: number, r: number, m: number): number[] {
  const oto = matMul(transpose(o, n, r), o, r, n, r); // r×r
  const bbt = matMul(b, transpose(b, r, m), r, m, r); // r×r
  const { values, vectors } = symmetricEigen(bbt, r);
  // L = V·diag(√λ): B·Bᵀ = L·Lᵀ
  const l = new Float64Array(r * r);
  for (let c = 0; c < r; c++) {
    const s = Math.sqrt(Math.max(values[c], 0));
    for (let i = 0; i < r; i++) l[i * r + c] = vectors[c][i] * s;
  }
  const inner = matMul(transpose(l, r, r), matMul(oto, l, r, r, r), r, r, r);
  return symmetricEigen(inner, r).values.map((v) => Math.sqrt(Math.max(v, 0)));
}
