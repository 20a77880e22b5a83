/**
 * Reference linear algebra used only by the tests: plain, slow and easy to check by eye
 * (a matrix-vector product, and solves and inverses through Cholesky that the production
 * code does blocked and compiled). Matrices are row-major, as in src/denoise/linalg.ts.
 */
import {
  cholesky,
  choleskySolve,
  identity,
  type SolveResult,
  symmetriseInPlace,
} from '../../src/denoise/linalg.js';

function checkSize(a: ArrayLike<number>, expected: number, what: string): void {
  if (a.length !== expected) {
    throw new RangeError(`${what}: expected ${expected} values, got ${a.length}`);
  }
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
