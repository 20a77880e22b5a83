/**
 * Reference linear algebra used only by the tests: plain, slow and easy to check by eye.
 * Cyclic Jacobi gives eigenvectors as well as values, so the tests can check the
 * production eigenvalue routine (tridiagonal QL) and the closed-form fit against it.
 * Matrices are row-major, as in src/denoise/linalg.ts.
 */
import {
  cholesky,
  choleskySolve,
  frobeniusNorm,
  identity,
  symmetriseInPlace,
} from '../../src/denoise/linalg.js';

function checkSize(a: ArrayLike<number>, expected: number, what: string): void {
  if (a.length !== expected) {
    throw new RangeError(`${what}: expected ${expected} values, got ${a.length}`);
  }
}

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

/**
 * Matrix-vector product y = A x with A n x m.
 * @param a - matrix, n x m
 * @param x - vector of length m
 * @param n - rows of A
 * @param m - columns of A
 * @example matvec(identity(2), [3, 4], 2, 2) // [3, 4]
 */
export function matvec(
  a: ArrayLike<number>,
  x: ArrayLike<number>,
  n: number,
  m: number,
): Float64Array {
  checkSize(a, n * m, 'matvec A');
  checkSize(x, m, 'matvec x');
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const r = i * m;
    for (let j = 0; j < m; j++) s += a[r + j]! * x[j]!;
    y[i] = s;
  }
  return y;
}

/**
 * Solves A X = B for symmetric positive definite A via Cholesky; on failure returns the
 * failing pivot instead of a solution.
 * @param a - SPD matrix, n x n
 * @param b - right-hand sides, n x m
 * @param n - size
 * @param m - number of right-hand sides (default 1)
 * @param opts - passed to {@link cholesky}
 * @example
 * const r = spdSolve([4, 2, 2, 3], [6, 5], 2);
 * if (r.ok) r.x; // [1, 1]
 */
export function spdSolve(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  m = 1,
  opts: { minPivot?: number } = {},
): SolveResult {
  const f = cholesky(a, n, opts);
  if (!f.ok) return f;
  return { ok: true, x: choleskySolve(f.l, b, n, m) };
}

/**
 * Inverse of a symmetric positive definite matrix via Cholesky (symmetrised, so the result
 * is exactly symmetric). On failure returns the failing pivot.
 * @param a - SPD matrix, n x n
 * @param n - size
 * @param opts - passed to {@link cholesky}
 * @example
 * const r = spdInverse([2, 0, 0, 4], 2);
 * if (r.ok) r.x; // [0.5, 0, 0, 0.25]
 */
export function spdInverse(
  a: ArrayLike<number>,
  n: number,
  opts: { minPivot?: number } = {},
): SolveResult {
  const r = spdSolve(a, identity(n), n, n, opts);
  if (!r.ok) return r;
  symmetriseInPlace(r.x, n);
  return r;
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
