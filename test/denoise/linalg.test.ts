import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cholesky,
  choleskySolve,
  hypot,
  identity,
  matmul,
  singularValues,
  solveLower,
  solveLowerTranspose,
  symmetricEigen,
  symmetricEigenQl,
  symmetricEigenvalues,
  transpose,
} from '../../src/denoise/linalg.js';
import { Rng } from '../../src/util/rng.js';
import { matvec, spdInverse, spdSolve } from './linalg-reference.js';

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what = ''): void {
  assert.equal(a.length, b.length, `${what} length`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

function randomSymmetric(rng: Rng, n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const v = rng.normal();
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
  }
  return a;
}

describe('hypot', () => {
  test('agrees with Math.hypot to a few ulps, and stays finite at the extremes', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 2000; i++) {
      const x = rng.normal() * 10 ** Math.round(rng.normal() * 3);
      const y = rng.normal() * 10 ** Math.round(rng.normal() * 3);
      const ref = Math.hypot(x, y);
      assert.ok(Math.abs(hypot(x, y) - ref) <= 4 * Number.EPSILON * ref, `${x}, ${y}`);
    }
    // Where x² overflows or underflows, the scaled Math.hypot is used.
    assert.equal(hypot(3e200, 4e200), Math.hypot(3e200, 4e200));
    assert.equal(hypot(3e-200, 4e-200), Math.hypot(3e-200, 4e-200));
    assert.equal(hypot(0, 0), 0);
    assert.equal(hypot(-3, 4), 5);
  });
});

describe('linalg', () => {
  // A = L Lᵀ from a known lower-triangular L.
  const L = new Float64Array([2, 0, 0, 1, 3, 0, -1, 0.5, 1.5]);
  const A = matmul(L, transpose(L, 3, 3), 3, 3, 3);

  test('matmul and transpose on a hand case', () => {
    const a = new Float64Array([1, 2, 3, 4, 5, 6]); // 2 x 3
    const b = new Float64Array([1, 0, 0, 1, 1, 1]); // 3 x 2
    assert.deepEqual(Array.from(matmul(a, b, 2, 3, 2)), [4, 5, 10, 11]);
    assert.deepEqual(Array.from(transpose(a, 2, 3)), [1, 4, 2, 5, 3, 6]);
    assert.deepEqual(Array.from(matvec(a, [1, 1, 1], 2, 3)), [6, 15]);
  });

  test('Cholesky recovers the known factor', () => {
    // A by hand: row 0 = [4, 2, -2], row 1 = [2, 10, 0.5], row 2 = [-2, 0.5, 3.5]
    close(A, [4, 2, -2, 2, 10, 0.5, -2, 0.5, 3.5], 1e-15, 'A');
    const r = cholesky(A, 3);
    assert.ok(r.ok);
    close(r.l, L, 1e-14, 'L');
  });

  test('triangular and SPD solves', () => {
    const xTrue = new Float64Array([1, -2, 0.5, 3, 0, -1]); // 3 x 2
    const b = matmul(A, xTrue, 3, 3, 2);
    const r = spdSolve(A, b, 3, 2);
    assert.ok(r.ok);
    close(r.x, xTrue, 1e-12, 'x');
    // L y = c and Lᵀ y = c checked by multiplying back.
    const c = new Float64Array([1, 2, 3]);
    close(matvec(L, solveLower(L, c, 3), 3, 3), c, 1e-14, 'L solve');
    close(matvec(transpose(L, 3, 3), solveLowerTranspose(L, c, 3), 3, 3), c, 1e-14, 'Lᵀ solve');
    const f = cholesky(A, 3);
    assert.ok(f.ok);
    close(choleskySolve(f.l, matvec(A, c, 3, 3), 3), c, 1e-12, 'choleskySolve');
  });

  test('SPD inverse times A is the identity', () => {
    const r = spdInverse(A, 3);
    assert.ok(r.ok);
    close(matmul(A, r.x, 3, 3, 3), identity(3), 1e-13, 'A A^-1');
  });

  test('Cholesky reports the failing pivot instead of throwing', () => {
    // Pivot 0 fine (1), pivot 1: 1 - 2^2 = -3 < 0.
    const r = cholesky(new Float64Array([1, 2, 2, 1]), 2);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.pivot, 1);
      assert.equal(r.value, -3);
    }
    // Singular PSD matrix: fails at the last pivot with minPivot > 0.
    const s = cholesky(new Float64Array([1, 1, 1, 1]), 2, { minPivot: 1e-12 });
    assert.equal(s.ok, false);
    if (!s.ok) assert.equal(s.pivot, 1);
    const nan = spdSolve(new Float64Array([Number.NaN]), [1], 1);
    assert.equal(nan.ok, false);
  });

  test('eigenvalues of a known symmetric matrix', () => {
    // Tridiagonal [2 -1 0; -1 2 -1; 0 -1 2]: eigenvalues 2 - sqrt2, 2, 2 + sqrt2.
    const t = new Float64Array([2, -1, 0, -1, 2, -1, 0, -1, 2]);
    const expected = [2 - Math.SQRT2, 2, 2 + Math.SQRT2];
    const e = symmetricEigen(t, 3);
    close(e.values, expected, 1e-13, 'Jacobi');
    close(symmetricEigenvalues(t, 3), expected, 1e-13, 'QL');
    // Eigenvector of 2 + sqrt2 is (1, -sqrt2, 1)/2 up to sign.
    const v = [e.vectors[2]!, e.vectors[5]!, e.vectors[8]!];
    const sign = Math.sign(v[0]!);
    close(
      v.map((x) => x * sign),
      [0.5, -Math.SQRT2 / 2, 0.5],
      1e-12,
      'eigenvector',
    );
  });

  test('Jacobi decomposition reconstructs a random matrix and agrees with QL', () => {
    const rng = new Rng(7);
    const n = 24;
    const a = randomSymmetric(rng, n);
    const { values, vectors } = symmetricEigen(a, n);
    for (let i = 1; i < n; i++) assert.ok(values[i]! >= values[i - 1]!, 'ascending');
    // V diag(values) Vᵀ == A and VᵀV == I
    const vd = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) vd[i * n + j] = vectors[i * n + j]! * values[j]!;
    close(matmul(vd, transpose(vectors, n, n), n, n, n), a, 1e-11, 'V D Vᵀ');
    close(matmul(transpose(vectors, n, n), vectors, n, n, n), identity(n), 1e-12, 'VᵀV');
    close(symmetricEigenvalues(a, n), values, 1e-11, 'QL vs Jacobi');
  });

  test('Householder-QL decomposition with vectors: V diag(λ) Vᵀ = A, VᵀV = I, Jacobi’s values', () => {
    const rng = new Rng(11);
    for (const n of [1, 2, 5, 24, 61]) {
      const a = randomSymmetric(rng, n);
      const { values, vectors } = symmetricEigenQl(a, n);
      for (let i = 1; i < n; i++) assert.ok(values[i]! >= values[i - 1]!, 'ascending');
      const vd = new Float64Array(n * n);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) vd[i * n + j] = vectors[i * n + j]! * values[j]!;
      close(matmul(vd, transpose(vectors, n, n), n, n, n), a, 1e-11, `V D Vᵀ n=${n}`);
      close(matmul(transpose(vectors, n, n), vectors, n, n, n), identity(n), 1e-12, `VᵀV n=${n}`);
      close(values, symmetricEigen(a, n).values, 1e-11, `QL vs Jacobi n=${n}`);
    }
    // Repeated eigenvalues: Q diag(2, 2, 2, 5) Qᵀ with a rotation Q; and a diagonal matrix.
    const th = 0.7;
    const q = new Float64Array([
      Math.cos(th),
      -Math.sin(th),
      0,
      0,
      Math.sin(th),
      Math.cos(th),
      0,
      0,
      0,
      0,
      1,
      0,
      0,
      0,
      0,
      1,
    ]);
    const m = matmul(
      matmul(q, [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 5], 4, 4, 4),
      transpose(q, 4, 4),
      4,
      4,
      4,
    );
    const r = symmetricEigenQl(m, 4);
    close(r.values, [2, 2, 2, 5], 1e-14, 'repeated');
    close(
      matmul(transpose(r.vectors, 4, 4), r.vectors, 4, 4, 4),
      identity(4),
      1e-14,
      'repeated VᵀV',
    );
    close(symmetricEigenQl([3, 0, 0, 0, 1, 0, 0, 0, 3], 3).values, [1, 3, 3], 0, 'diagonal');
  });

  test('eigenvalues with repeated values and a diagonal matrix', () => {
    const d = new Float64Array([3, 0, 0, 0, 1, 0, 0, 0, 3]);
    close(symmetricEigenvalues(d, 3), [1, 3, 3], 0, 'diagonal');
    close(symmetricEigen(d, 3).values, [1, 3, 3], 0, 'diagonal Jacobi');
    close(symmetricEigenvalues([5], 1), [5], 0, '1x1');
  });

  test('singular values of a general matrix', () => {
    // Q diag(3, 2, 0.5) Rᵀ with rotations Q, R has singular values 3, 2, 0.5.
    const rot = (th: number) =>
      new Float64Array([Math.cos(th), -Math.sin(th), 0, Math.sin(th), Math.cos(th), 0, 0, 0, 1]);
    const swap = new Float64Array([1, 0, 0, 0, 0, 1, 0, 1, 0]);
    const q = matmul(rot(0.3), swap, 3, 3, 3);
    const r = matmul(swap, rot(-1.1), 3, 3, 3);
    const m = matmul(
      matmul(q, [3, 0, 0, 0, 2, 0, 0, 0, 0.5], 3, 3, 3),
      transpose(r, 3, 3),
      3,
      3,
      3,
    );
    close(singularValues(m, 3), [3, 2, 0.5], 1e-12, 'sv');
    close(singularValues([0, 2, -3, 0], 2), [3, 2], 1e-14, 'sv 2x2');
    // Rank-deficient: clamped at 0, never NaN.
    const sv = singularValues([1, 1, 1, 1], 2);
    assert.ok(Math.abs(sv[0]! - 2) < 1e-14 && sv[1]! >= 0 && sv[1]! < 1e-7);
  });

  test('n = 200: tridiagonal QL agrees with Jacobi and preserves the trace', () => {
    const rng = new Rng(3);
    const n = 200;
    const a = randomSymmetric(rng, n);
    const ev = symmetricEigenvalues(a, n);
    const jac = symmetricEigen(a, n).values;
    close(ev, jac, 1e-10, 'n=200');
    // Trace is preserved.
    let tr = 0;
    for (let i = 0; i < n; i++) tr += a[i * n + i]!;
    assert.ok(Math.abs(ev.reduce((s, v) => s + v, 0) - tr) < 1e-9);
  });
});
