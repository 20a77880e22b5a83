/**
 * Small dense linear algebra in float64 for the closed-form fit, the fusion maths and the
 * diagnostics. Matrices are row-major `Float64Array`s with their sizes passed explicitly
 * (`a[i * m + j]` is row i, column j of an n x m matrix). Inputs may be float32 or float64;
 * results are always float64. Nothing here allocates more than a few n x n buffers.
 *
 * Sizes: everything is O(n^3) with small constants and runs in seconds up to n of about
 * 1000-1500, except {@link symmetricEigen} (cyclic Jacobi, eigenvectors included), which
 * needs several O(n^3) sweeps and is meant for n <= 512. For larger matrices use
 * {@link symmetricEigenvalues} (Householder tridiagonalisation + implicit QL, values only).
 */

/** A float32 or float64 vector/matrix buffer. */
export type NumArray = Float32Array | Float64Array;

/** Result of a factorisation that can fail on a non-positive pivot. */
export type CholeskyResult =
  | {
      ok: true /** lower-triangular factor L (n x n, zeros above the diagonal), A = L Lᵀ */;
      l: Float64Array;
    }
  | {
      ok: false;
      /** 0-based index of the pivot (diagonal entry of L) that failed */
      pivot: number;
      /** the value under the square root at that pivot (<= minPivot or not finite) */
      value: number;
    };

/** Result of a solve through Cholesky: the solution, or the failing pivot. */
export type SolveResult =
  { ok: true; x: Float64Array } | { ok: false; pivot: number; value: number };

/** Symmetric eigen-decomposition: values ascending, `vectors` n x n with eigenvector k in column k. */
export interface SymmetricEigen {
  values: Float64Array;
  vectors: Float64Array;
  /** Jacobi sweeps used. */
  sweeps: number;
}

function checkSize(a: ArrayLike<number>, expected: number, what: string): void {
  if (a.length !== expected) {
    throw new RangeError(`${what}: expected ${expected} values, got ${a.length}`);
  }
}

/**
 * √(x² + y²) for Givens rotations: Math.hypot is variadic and many times slower in V8, and
 * the band and QL stages call this millions of times. Falls back to Math.hypot where x² or
 * y² could overflow or underflow.
 * @example hypot(3, 4) // 5
 */
export function hypot(x: number, y: number): number {
  const ax = Math.abs(x);
  const ay = Math.abs(y);
  const big = ax > ay ? ax : ay;
  if (big > 1e150 || (big < 1e-150 && big > 0)) return Math.hypot(x, y);
  return Math.sqrt(x * x + y * y);
}

/**
 * The n x n identity matrix.
 * @param n - size
 * @example identity(2) // Float64Array [1, 0, 0, 1]
 */
export function identity(n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

/**
 * Matrix product C = A B with A n x k and B k x m (row-major).
 * @param a - left matrix, n x k
 * @param b - right matrix, k x m
 * @param n - rows of A
 * @param k - columns of A = rows of B
 * @param m - columns of B
 * @example matmul(identity(2), new Float64Array([1, 2, 3, 4]), 2, 2, 2) // [1, 2, 3, 4]
 */
export function matmul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  k: number,
  m: number,
): Float64Array {
  checkSize(a, n * k, 'matmul A');
  checkSize(b, k * m, 'matmul B');
  const c = new Float64Array(n * m);
  // i-p-j order: the inner loop walks rows of B and C contiguously.
  for (let i = 0; i < n; i++) {
    const ci = i * m;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p]!;
      if (aip === 0) continue;
      const bp = p * m;
      for (let j = 0; j < m; j++) c[ci + j]! += aip * b[bp + j]!;
    }
  }
  return c;
}

/**
 * Transpose of an n x m matrix (result m x n).
 * @param a - matrix, n x m
 * @param n - rows
 * @param m - columns
 * @example transpose(new Float64Array([1, 2, 3]), 1, 3) // 3 x 1: [1, 2, 3]
 */
export function transpose(a: ArrayLike<number>, n: number, m: number): Float64Array {
  checkSize(a, n * m, 'transpose');
  const t = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) t[j * n + i] = a[i * m + j]!;
  return t;
}

/**
 * Frobenius norm sqrt(sum a_ij^2) of any buffer (scaled to avoid overflow).
 * @param a - values
 * @example frobeniusNorm([3, 4]) // 5
 */
export function frobeniusNorm(a: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(a[i]!));
  if (scale === 0 || !Number.isFinite(scale)) return scale;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i]! / scale;
    s += v * v;
  }
  return scale * Math.sqrt(s);
}

/**
 * Largest |A_ij - A_ji| relative to the largest |A_ij| (0 for a symmetric matrix).
 * @param a - square matrix, n x n
 * @param n - size
 * @example asymmetry([1, 2, 2, 1], 2) // 0
 */
export function asymmetry(a: ArrayLike<number>, n: number): number {
  checkSize(a, n * n, 'asymmetry');
  let maxAbs = 0;
  let maxDiff = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      maxAbs = Math.max(maxAbs, Math.abs(a[i * n + j]!));
      if (j > i) maxDiff = Math.max(maxDiff, Math.abs(a[i * n + j]! - a[j * n + i]!));
    }
  }
  return maxAbs === 0 ? 0 : maxDiff / maxAbs;
}

/**
 * Cholesky factorisation A = L Lᵀ of a symmetric positive definite matrix (only the lower
 * triangle of A is read). Fails, without throwing, at the first pivot whose value under the
 * square root is not finite or is <= `minPivot`, and says which one.
 * @param a - symmetric matrix, n x n
 * @param n - size
 * @param opts - `minPivot`: smallest accepted pivot value (default 0, i.e. strict positivity)
 * @example
 * const r = cholesky(new Float64Array([4, 2, 2, 3]), 2);
 * if (r.ok) r.l; // [2, 0, 1, sqrt(2)]
 */
export function cholesky(
  a: ArrayLike<number>,
  n: number,
  opts: { minPivot?: number } = {},
): CholeskyResult {
  checkSize(a, n * n, 'cholesky');
  const minPivot = opts.minPivot ?? 0;
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const lj = j * n;
    let d = a[lj + j]!;
    for (let k = 0; k < j; k++) d -= l[lj + k]! * l[lj + k]!;
    if (!(d > minPivot) || !Number.isFinite(d)) return { ok: false, pivot: j, value: d };
    const ljj = Math.sqrt(d);
    l[lj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const li = i * n;
      let s = a[li + j]!;
      for (let k = 0; k < j; k++) s -= l[li + k]! * l[lj + k]!;
      l[li + j] = s / ljj;
    }
  }
  return { ok: true, l };
}

/**
 * Forward substitution: solves L X = B for lower-triangular L (n x n), B n x m.
 * @param l - lower-triangular matrix, n x n (entries above the diagonal are ignored)
 * @param b - right-hand sides, n x m
 * @param n - size of L
 * @param m - number of right-hand sides (default 1)
 * @example solveLower([2, 0, 1, 1], [2, 3], 2) // [1, 2]
 */
export function solveLower(
  l: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  m = 1,
): Float64Array {
  checkSize(l, n * n, 'solveLower L');
  checkSize(b, n * m, 'solveLower B');
  const x = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    const xi = i * m;
    for (let k = 0; k < i; k++) {
      const lik = l[i * n + k]!;
      if (lik === 0) continue;
      const xk = k * m;
      for (let j = 0; j < m; j++) x[xi + j]! -= lik * x[xk + j]!;
    }
    const d = l[i * n + i]!;
    for (let j = 0; j < m; j++) x[xi + j]! /= d;
  }
  return x;
}

/**
 * Back substitution with the transpose of a lower-triangular matrix: solves Lᵀ X = B.
 * @param l - lower-triangular matrix, n x n
 * @param b - right-hand sides, n x m
 * @param n - size of L
 * @param m - number of right-hand sides (default 1)
 * @example solveLowerTranspose([2, 0, 1, 1], [4, 2], 2) // Lᵀ = [[2, 1], [0, 1]] -> [1, 2]
 */
export function solveLowerTranspose(
  l: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  m = 1,
): Float64Array {
  checkSize(l, n * n, 'solveLowerTranspose L');
  checkSize(b, n * m, 'solveLowerTranspose B');
  const x = Float64Array.from(b);
  for (let i = n - 1; i >= 0; i--) {
    const xi = i * m;
    // (Lᵀ)_{ik} = L_{ki} for k > i.
    for (let k = i + 1; k < n; k++) {
      const lki = l[k * n + i]!;
      if (lki === 0) continue;
      const xk = k * m;
      for (let j = 0; j < m; j++) x[xi + j]! -= lki * x[xk + j]!;
    }
    const d = l[i * n + i]!;
    for (let j = 0; j < m; j++) x[xi + j]! /= d;
  }
  return x;
}

/**
 * Solves A X = B given the Cholesky factor L of A (A = L Lᵀ).
 * @param l - Cholesky factor from {@link cholesky}
 * @param b - right-hand sides, n x m
 * @param n - size
 * @param m - number of right-hand sides (default 1)
 * @example
 * const r = cholesky(a, n);
 * if (r.ok) choleskySolve(r.l, b, n);
 */
export function choleskySolve(
  l: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  m = 1,
): Float64Array {
  return solveLowerTranspose(l, solveLower(l, b, n, m), n, m);
}

/** Replaces A by (A + Aᵀ) / 2 in place. */
export function symmetriseInPlace(a: Float64Array, n: number): Float64Array {
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = 0.5 * (a[i * n + j]! + a[j * n + i]!);
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
  }
  return a;
}

/**
 * Symmetric eigen-decomposition A = V diag(values) Vᵀ by cyclic Jacobi rotations (accurate,
 * eigenvectors orthonormal to rounding). Values are sorted ascending and the columns of
 * `vectors` follow them. Each sweep costs O(n^3) and 6-10 sweeps are typical: intended for
 * n <= 512 (about 10 s there on one core); use {@link symmetricEigenvalues} for larger matrices when
 * only the values are needed. Only the symmetric part of A is used.
 * @param a - symmetric matrix, n x n
 * @param n - size
 * @param opts - `maxSweeps` (default 60)
 * @example symmetricEigen([2, 1, 1, 2], 2).values // [1, 3]
 */
export function symmetricEigen(
  a: ArrayLike<number>,
  n: number,
  opts: { maxSweeps?: number } = {},
): SymmetricEigen {
  checkSize(a, n * n, 'symmetricEigen');
  const maxSweeps = opts.maxSweeps ?? 60;
  const s = symmetriseInPlace(Float64Array.from(a), n);
  const v = identity(n);
  const normF = frobeniusNorm(s);
  let sweeps = 0;
  for (; sweeps < maxSweeps; sweeps++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += s[p * n + q]! ** 2;
    if (!(Math.sqrt(off) > 1e-15 * normF)) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = s[p * n + q]!;
        if (apq === 0) continue;
        const app = s[p * n + p]!;
        const aqq = s[q * n + q]!;
        // Skip rotations that cannot change the diagonal in floating point.
        if (Math.abs(apq) < 1e-300 || Math.abs(apq) <= 1e-18 * (Math.abs(app) + Math.abs(aqq))) {
          s[p * n + q] = 0;
          s[q * n + p] = 0;
          continue;
        }
        // Rotation angle zeroing a_pq: tan(theta) = t is the smaller root of
        // t^2 + 2 theta t - 1 = 0 with theta = (a_qq - a_pp) / (2 a_pq).
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        const tau = sn / (1 + c);
        s[p * n + p] = app - t * apq;
        s[q * n + q] = aqq + t * apq;
        s[p * n + q] = 0;
        s[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          if (k === p || k === q) continue;
          const g = s[k * n + p]!;
          const h = s[k * n + q]!;
          const gp = g - sn * (h + g * tau);
          const hq = h + sn * (g - h * tau);
          s[k * n + p] = gp;
          s[p * n + k] = gp;
          s[k * n + q] = hq;
          s[q * n + k] = hq;
        }
        for (let k = 0; k < n; k++) {
          const g = v[k * n + p]!;
          const h = v[k * n + q]!;
          v[k * n + p] = g - sn * (h + g * tau);
          v[k * n + q] = h + sn * (g - h * tau);
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (i, j) => s[i * n + i]! - s[j * n + j]!,
  );
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = s[src * n + src]!;
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src]!;
  });
  return { values, vectors, sweeps };
}

/**
 * Eigenvalues (ascending) of a symmetric matrix, without eigenvectors: Householder reduction
 * to tridiagonal form, then the implicit QL iteration with Wilkinson-type shifts. About
 * (4/3) n^3 flops for the reduction, O(n^2) for the iteration: fine up to n of ~2000.
 * Only the symmetric part of A is used.
 * @param a - symmetric matrix, n x n
 * @param n - size
 * @example symmetricEigenvalues([2, 1, 1, 2], 2) // [1, 3]
 */
export function symmetricEigenvalues(a: ArrayLike<number>, n: number): Float64Array {
  checkSize(a, n * n, 'symmetricEigenvalues');
  const s = symmetriseInPlace(Float64Array.from(a), n);
  const d = new Float64Array(n);
  const e = new Float64Array(n); // e[i] couples i and i+1
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  // Householder: for each column k, reflect the part below the diagonal onto its first
  // entry, H = I - beta v vᵀ, and update the trailing block A22 <- H A22 H as
  // A22 - v wᵀ - w vᵀ with p = beta A22 v, w = p - (beta/2)(vᵀp) v.
  for (let k = 0; k < n - 2; k++) {
    const m0 = k + 1;
    let scale = 0;
    for (let i = m0; i < n; i++) scale = Math.max(scale, Math.abs(s[i * n + k]!));
    d[k] = s[k * n + k]!;
    if (scale === 0) {
      e[k] = 0;
      continue;
    }
    let norm2 = 0;
    for (let i = m0; i < n; i++) {
      v[i] = s[i * n + k]! / scale;
      norm2 += v[i]! * v[i]!;
    }
    const x0 = v[m0]!;
    const alpha = x0 >= 0 ? -Math.sqrt(norm2) : Math.sqrt(norm2);
    e[k] = alpha * scale;
    v[m0] = x0 - alpha;
    const vtv = norm2 - 2 * x0 * alpha + alpha * alpha;
    if (vtv === 0) continue;
    const beta = 2 / vtv;
    let vtp = 0;
    for (let i = m0; i < n; i++) {
      let acc = 0;
      const r = i * n;
      for (let j = m0; j < n; j++) acc += s[r + j]! * v[j]!;
      p[i] = beta * acc;
      vtp += v[i]! * p[i]!;
    }
    const kk = 0.5 * beta * vtp;
    for (let i = m0; i < n; i++) p[i] = p[i]! - kk * v[i]!; // p now holds w
    for (let i = m0; i < n; i++) {
      const r = i * n;
      const vi = v[i]!;
      const wi = p[i]!;
      for (let j = m0; j < n; j++) s[r + j] = s[r + j]! - vi * p[j]! - wi * v[j]!;
    }
  }
  if (n >= 2) {
    d[n - 2] = s[(n - 2) * n + (n - 2)]!;
    e[n - 2] = s[(n - 1) * n + (n - 2)]!;
  }
  if (n >= 1) d[n - 1] = s[(n - 1) * n + (n - 1)]!;
  e[n - 1] = 0;
  tridiagonalQl(d, e);
  return d.sort();
}

/**
 * Symmetric eigen-decomposition A = V diag(values) Vᵀ by Householder tridiagonalisation
 * and the implicit QL iteration, with the eigenvectors accumulated: A = Q T Qᵀ with
 * Q = H_0 H_1 ... (the reflections), then every QL rotation applied to Q's columns. About 3n³ flops in all, several times faster than the cyclic Jacobi of
 * {@link symmetricEigen} beyond n of about 100, and fine up to n of about 2000. Values
 * ascending, eigenvector k in column k. Only the symmetric part of A is used.
 * @param a - symmetric matrix, n x n
 * @param n - size
 * @example symmetricEigenQl([2, 1, 1, 2], 2).values // [1, 3]
 */
export function symmetricEigenQl(a: ArrayLike<number>, n: number): SymmetricEigen {
  checkSize(a, n * n, 'symmetricEigenQl');
  const s = symmetriseInPlace(Float64Array.from(a), n);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const p = new Float64Array(n);
  // Householder vectors (row k holds v_k on entries k+1..n-1) and their betas.
  const vs = new Float64Array(n * n);
  const betas = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const m0 = k + 1;
    const v = vs.subarray(k * n, (k + 1) * n);
    let scale = 0;
    for (let i = m0; i < n; i++) scale = Math.max(scale, Math.abs(s[i * n + k]!));
    d[k] = s[k * n + k]!;
    if (scale === 0) {
      e[k] = 0;
      continue;
    }
    let norm2 = 0;
    for (let i = m0; i < n; i++) {
      v[i] = s[i * n + k]! / scale;
      norm2 += v[i]! * v[i]!;
    }
    const x0 = v[m0]!;
    const alpha = x0 >= 0 ? -Math.sqrt(norm2) : Math.sqrt(norm2);
    e[k] = alpha * scale;
    v[m0] = x0 - alpha;
    const vtv = norm2 - 2 * x0 * alpha + alpha * alpha;
    if (vtv === 0) continue;
    const beta = 2 / vtv;
    betas[k] = beta;
    let vtp = 0;
    for (let i = m0; i < n; i++) {
      let acc = 0;
      const r = i * n;
      for (let j = m0; j < n; j++) acc += s[r + j]! * v[j]!;
      p[i] = beta * acc;
      vtp += v[i]! * p[i]!;
    }
    const kk = 0.5 * beta * vtp;
    for (let i = m0; i < n; i++) p[i] = p[i]! - kk * v[i]!;
    for (let i = m0; i < n; i++) {
      const r = i * n;
      const vi = v[i]!;
      const wi = p[i]!;
      for (let j = m0; j < n; j++) s[r + j] = s[r + j]! - vi * p[j]! - wi * v[j]!;
    }
  }
  if (n >= 2) {
    d[n - 2] = s[(n - 2) * n + (n - 2)]!;
    e[n - 2] = s[(n - 1) * n + (n - 2)]!;
  }
  if (n >= 1) d[n - 1] = s[(n - 1) * n + (n - 1)]!;
  e[n - 1] = 0;
  // Qᵀ = H_{n-3} ... H_1 H_0 (each H symmetric), built as M <- H_k M for k = 0, 1, ...;
  // H_k M = M − beta v (vᵀ M) touches only rows k+1..n-1. Kept transposed so that the QL
  // rotations below combine two contiguous rows.
  const qt = identity(n);
  const row = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const beta = betas[k]!;
    if (beta === 0) continue;
    const v = vs.subarray(k * n, (k + 1) * n);
    row.fill(0);
    for (let i = k + 1; i < n; i++) {
      const vi = v[i]!;
      const r = i * n;
      for (let j = 0; j < n; j++) row[j]! += vi * qt[r + j]!;
    }
    for (let i = k + 1; i < n; i++) {
      const f = beta * v[i]!;
      const r = i * n;
      for (let j = 0; j < n; j++) qt[r + j]! -= f * row[j]!;
    }
  }
  tridiagonalQl(d, e, qt);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[i]! - d[j]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src]!;
    for (let k = 0; k < n; k++) vectors[k * n + dst] = qt[src * n + k]!;
  });
  return { values, vectors, sweeps: 0 };
}

/**
 * Eigenvalues (ascending) of the symmetric tridiagonal matrix with diagonal d and
 * off-diagonal e (e[i] joins i and i+1; e[n-1] unused), by the implicit QL iteration.
 * Neither input is modified.
 * @param d - diagonal, length n
 * @param e - off-diagonal, length n (or n - 1)
 * @example tridiagonalEigenvalues([2, 2], [1, 0]) // [1, 3]
 */
export function tridiagonalEigenvalues(d: ArrayLike<number>, e: ArrayLike<number>): Float64Array {
  const n = d.length;
  const dd = Float64Array.from(d);
  const ee = new Float64Array(n);
  for (let i = 0; i < n - 1; i++) ee[i] = e[i]!;
  tridiagonalQl(dd, ee);
  return dd.sort();
}

/**
 * Implicit QL iteration on a symmetric tridiagonal matrix (diagonal d, off-diagonal e with
 * e[i] joining i and i+1); d is overwritten with the eigenvalues (unsorted), e destroyed.
 * With `zt` (n x n, row-major, holding Zᵀ), every rotation is also applied to Z's columns
 * i and i+1 (rows of zt), so that Z ends as Z·(the eigenvectors of the tridiagonal matrix).
 */
function tridiagonalQl(d: Float64Array, e: Float64Array, zt?: Float64Array): void {
  const n = d.length;
  // An off-diagonal is also negligible below eps·‖T‖ (an absolute change of the eigenvalues
  // within the rounding of a reduction to tridiagonal form). Without it, a zero block
  // (pixels that are always 0) joined by round-off of order 1e-20 never deflates: eps times
  // |d[m]| + |d[m+1]| = 0 is a test no nonzero e[m] passes.
  let norm = 0;
  for (let i = 0; i < n; i++)
    norm = Math.max(norm, Math.abs(d[i]!) + Math.abs(e[i]!) + (i > 0 ? Math.abs(e[i - 1]!) : 0));
  const tiny = Number.EPSILON * norm;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      // Find the first negligible off-diagonal at or after l: the block l..m is unreduced.
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        if (Math.abs(e[m]!) <= Number.EPSILON * dd || Math.abs(e[m]!) <= tiny) break;
      }
      if (m === l) break;
      if (++iter > 200) throw new Error('symmetricEigenvalues: QL iteration did not converge');
      // Shift from the leading 2x2 block (Wilkinson-style), then chase the bulge upwards
      // with Givens rotations from m-1 down to l.
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
      let r = hypot(g, 1);
      g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? r : -r));
      let sn = 1;
      let c = 1;
      let pp = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        const f = sn * e[i]!;
        const b = c * e[i]!;
        r = hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] = d[i + 1]! - pp;
          e[m] = 0;
          underflow = true;
          break;
        }
        sn = f / r;
        c = g / r;
        g = d[i + 1]! - pp;
        r = (d[i]! - g) * sn + 2 * c * b;
        pp = sn * r;
        d[i + 1] = g + pp;
        g = c * r - b;
        if (zt) {
          const r0 = i * n;
          const r1 = r0 + n;
          for (let k = 0; k < n; k++) {
            const f1 = zt[r1 + k]!;
            const f0 = zt[r0 + k]!;
            zt[r1 + k] = sn * f0 + c * f1;
            zt[r0 + k] = c * f0 - sn * f1;
          }
        }
      }
      if (underflow) continue;
      d[l] = d[l]! - pp;
      e[l] = g;
      e[m] = 0;
    }
  }
}

/**
 * Singular values of a general square matrix, descending, as the square roots of the
 * eigenvalues of AᵀA (clamped at 0). Squaring the matrix loses relative accuracy for
 * singular values below about 1e-8 times the largest; that is fine for diagnostics of
 * near-identity maps, not for rank decisions.
 * @param a - square matrix, n x n
 * @param n - size
 * @example singularValues([0, 2, -3, 0], 2) // [3, 2]
 */
export function singularValues(a: ArrayLike<number>, n: number): Float64Array {
  checkSize(a, n * n, 'singularValues');
  // AᵀA accumulated directly: (AᵀA)_{ij} = sum_k a_ki a_kj.
  const g = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const r = k * n;
    for (let i = 0; i < n; i++) {
      const aki = a[r + i]!;
      if (aki === 0) continue;
      const gi = i * n;
      for (let j = i; j < n; j++) g[gi + j]! += aki * a[r + j]!;
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i]!;
  const ev = symmetricEigenvalues(g, n);
  const sv = new Float64Array(n);
  for (let i = 0; i < n; i++) sv[i] = Math.sqrt(Math.max(0, ev[n - 1 - i]!));
  return sv;
}

/** Lower band storage with room for one bulge diagonal: A(i, j), 0 <= i − j <= w. */
export class Band {
  readonly data: Float64Array;
  readonly stride: number;
  /**
   * @param n - order
   * @param w - stored half-width
   */
  constructor(
    readonly n: number,
    readonly w: number,
  ) {
    this.stride = w + 1;
    this.data = new Float64Array(n * this.stride);
  }
  /** Index of A(i, j) for i >= j. */
  at(i: number, j: number): number {
    return j * this.stride + (i - j);
  }
}

/**
 * Stage 2: band (half-width b) to tridiagonal by Givens rotations, eliminating each
 * column's entries from the outermost inwards and chasing each bulge (one entry at
 * distance b + 1) down the band (Schwarz's method). Returns the diagonal and off-diagonal.
 */
export function bandToTridiagonal(band: Band, b: number): { d: Float64Array; e: Float64Array } {
  const { n, data } = band;
  const st = band.stride;
  const at = (i: number, j: number) => j * st + (i - j);
  // One similarity rotation in the plane (p, p + 1), zeroing A(p + 1, col).
  const rotate = (p: number, col: number): boolean => {
    const q = p + 1;
    const x = data[at(p, col)]!;
    const y = data[at(q, col)]!;
    if (y === 0) return false;
    const r = hypot(x, y);
    const c = x / r;
    const s = y / r;
    // Columns m < p: A(p, m) at m·(st − 1) + p, A(q, m) just after it (q − m <= b + 1).
    const m0 = Math.max(0, q - b - 1);
    for (let ip = at(p, m0), end = at(p, p); ip < end; ip += st - 1) {
      const u = data[ip]!;
      const w = data[ip + 1]!;
      data[ip] = c * u + s * w;
      data[ip + 1] = c * w - s * u;
    }
    data[at(q, col)] = 0;
    // The 2x2 block.
    const app = data[at(p, p)]!;
    const aqq = data[at(q, q)]!;
    const aqp = data[at(q, p)]!;
    data[at(p, p)] = c * c * app + 2 * c * s * aqp + s * s * aqq;
    data[at(q, q)] = s * s * app - 2 * c * s * aqp + c * c * aqq;
    data[at(q, p)] = c * s * (aqq - app) + (c * c - s * s) * aqp;
    // Rows m > q: A(m, p) contiguous from at(q + 1, p), A(m, q) st − 1 after it
    // (m − p <= b + 1).
    const m1 = Math.min(n - 1, q + b);
    for (let ip = at(q + 1, p), end = at(m1 + 1, p); ip < end; ip++) {
      const u = data[ip]!;
      const w = data[ip + st - 1]!;
      data[ip] = c * u + s * w;
      data[ip + st - 1] = c * w - s * u;
    }
    return true;
  };
  for (let j = 0; j < n - 2; j++) {
    for (let kk = Math.min(b, n - 1 - j); kk >= 2; kk--) {
      let p = j + kk - 1;
      if (!rotate(p, j)) continue;
      // The bulge A(p + 1 + b, p): chase it down.
      while (p + 1 + b < n) {
        const col = p;
        p = p + b;
        if (!rotate(p, col)) break;
      }
    }
  }
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = data[at(i, i)]!;
  for (let i = 0; i < n - 1; i++) e[i] = data[at(i + 1, i)]!;
  return { d, e };
}

/**
 * Eigenvalues (ascending) of a symmetric band matrix of half-width b: bulge chasing to
 * tridiagonal, then QL (the second stage of symmetricEigenvaluesCompiled).
 * @param band - the band (overwritten)
 * @param b - its half-width (the band stores b + 1 for the bulge)
 * @example bandEigenvalues(band, 16)
 */
export function bandEigenvalues(band: Band, b: number): Float64Array {
  const { d, e } = bandToTridiagonal(band, b);
  return tridiagonalEigenvalues(d, e);
}
