import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import {
  fitDenoiser,
  fitDenoiserCompiled,
  fusedMapSpectrum,
  MomentAccumulator,
} from '../../src/denoise/closed-form.js';
import { layerDiagnostics } from '../../src/denoise/diagnostics-math.js';
import {
  DenseKernels,
  internals,
  matmulCompiled,
  spdInverseCompiled,
  symmetricEigenvaluesCompiled,
} from '../../src/denoise/linalg-compiled.js';
import {
  Band,
  bandEigenvalues,
  bandToTridiagonal,
  matmul,
  symmetricEigen,
  symmetricEigenvalues,
  tridiagonalEigenvalues,
} from '../../src/denoise/linalg.js';
import { coefficients, makeSchedule } from '../../src/denoise/schedule.js';
import { Rng } from '../../src/util/rng.js';
import { spdInverse } from './linalg-reference.js';

// Small cut-offs so that matrices of a few hundred exercise every recursion level, the
// band stage and its bulge chasing, with the same code paths as 3,072-wide layers.
const kernels = new DenseKernels({ threads: 1, base: 24, band: 6 });
after(() => kernels.release());

/** A random SPD matrix X Xᵀ / m + shift I whose condition number grows as shift falls. */
function randomSpd(rng: Rng, n: number, shift: number, m = n + 7): Float64Array {
  const x = new Float64Array(n * m);
  rng.fillNormal(x);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let r = 0; r < m; r++) s += x[i * m + r]! * x[j * m + r]!;
      a[i * n + j] = s / m;
      a[j * n + i] = s / m;
    }
  for (let i = 0; i < n; i++) a[i * n + i]! += shift;
  return a;
}

function relFrobenius(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (a[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('DenseKernels.gemm', () => {
  test('matches the JavaScript product with transposes, alpha and beta', async () => {
    const rng = new Rng(1);
    const [n, p, m] = [7, 5, 4];
    const a = rng.fillNormal(new Float64Array(n * p));
    const b = rng.fillNormal(new Float64Array(p * m));
    const c = rng.fillNormal(new Float64Array(n * m));
    const ab = matmul(a, b, n, p, m);
    const plain = await kernels.gemm(a, [n, p], b, [p, m]);
    assert.ok(maxAbsDiff(plain, ab) < 1e-13);
    // Aᵀ stored as p x n, Bᵀ stored as m x p.
    const at = new Float64Array(p * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) at[j * n + i] = a[i * p + j]!;
    const bt = new Float64Array(m * p);
    for (let i = 0; i < p; i++) for (let j = 0; j < m; j++) bt[j * p + i] = b[i * m + j]!;
    const y = await kernels.gemm(at, [p, n], bt, [m, p], c, {
      transA: true,
      transB: true,
      alpha: -2,
      beta: 0.5,
    });
    const want = ab.map((v, i) => -2 * v + 0.5 * c[i]!);
    assert.ok(maxAbsDiff(y, want) < 1e-12);
  });

  test('refuses mismatched inner sizes, naming both shapes', async () => {
    await assert.rejects(
      kernels.gemm(new Float64Array(6), [2, 3], new Float64Array(8), [4, 2]),
      /inner sizes differ \(3 vs 4\) for A \[2,3\] and B \[4,2\]/,
    );
  });

  test('matmulCompiled accepts float32 inputs and computes in float64', async () => {
    const rng = new Rng(2);
    const a = rng.fillNormal(new Float32Array(6 * 9));
    const b = rng.fillNormal(new Float32Array(9 * 3));
    const c = await matmulCompiled(a, b, 6, 9, 3, kernels);
    assert.ok(maxAbsDiff(c, matmul(a, b, 6, 9, 3)) < 1e-12);
  });
});

describe('spdInverseCompiled', () => {
  // Both are Cholesky-based, so they differ by rounding only: forward error ≲ cond · n · eps.
  for (const [n, shift] of [
    [1, 0.5],
    [23, 0.1],
    [97, 1e-3],
    [230, 1e-6],
  ] as const) {
    test(`equals the JavaScript reference at n = ${n}, shift ${shift}`, async () => {
      const a = randomSpd(new Rng(n), n, shift);
      const ref = spdInverse(a, n);
      const got = await spdInverseCompiled(a, n, kernels);
      assert.ok(ref.ok && got.ok);
      // cond(A) <= (max eigenvalue + shift) / shift, about 4 / shift here.
      const bound = Math.max(1e-13, 4e-15 * (4 / shift) * Math.sqrt(n));
      const err = relFrobenius(got.x, ref.x);
      assert.ok(err <= bound, `relative error ${err} > ${bound}`);
      // and it is an inverse: ‖A X − I‖_F small relative to cond · eps
      const ax = matmul(a, got.x, n, n, n);
      for (let i = 0; i < n; i++) ax[i * n + i]! -= 1;
      assert.ok(Math.sqrt(ax.reduce((s, v) => s + v * v, 0)) < bound * Math.sqrt(n) * 10);
    });
  }

  test('reads the lower triangle only, and returns an exactly symmetric inverse', async () => {
    const n = 130;
    const a = randomSpd(new Rng(4), n, 0.1);
    const lowerOnly = a.slice();
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) lowerOnly[i * n + j] = Number.NaN;
    const full = await spdInverseCompiled(a, n, kernels);
    const lower = await spdInverseCompiled(lowerOnly, n, kernels);
    assert.ok(full.ok && lower.ok);
    assert.deepEqual(lower.x, full.x);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < i; j++) assert.equal(full.x[i * n + j], full.x[j * n + i]);
  });

  test('reports the failing pivot of a singular matrix like the reference', async () => {
    const n = 60;
    const a = randomSpd(new Rng(3), n, 0.5);
    // Make row/column 41 a copy of row/column 40: singular from pivot 41 on.
    for (let j = 0; j < n; j++) {
      a[41 * n + j] = a[40 * n + j]!;
      a[j * n + 41] = a[j * n + 40]!;
    }
    a[41 * n + 41] = a[40 * n + 40]!;
    const opts = { minPivot: 1e-10 };
    const ref = spdInverse(a, n, opts);
    const got = await spdInverseCompiled(a, n, kernels, opts);
    assert.equal(ref.ok, false);
    assert.equal(got.ok, false);
    if (!ref.ok && !got.ok) assert.equal(got.pivot, ref.pivot);
  });
});

describe('symmetricEigenvaluesCompiled', () => {
  // Both are backward stable: each eigenvalue within a small multiple of n · eps · ‖A‖₂.
  for (const n of [2, 24, 25, 61, 203]) {
    test(`equals the JavaScript reference at n = ${n}`, async () => {
      const rng = new Rng(10 + n);
      const a = new Float64Array(n * n);
      for (let i = 0; i < n; i++)
        for (let j = 0; j <= i; j++) {
          const v = rng.normal();
          a[i * n + j] = v;
          a[j * n + i] = v;
        }
      const ref = symmetricEigenvalues(a, n);
      const got = await symmetricEigenvaluesCompiled(a, n, kernels);
      const norm = Math.max(Math.abs(ref[0]!), Math.abs(ref[n - 1]!));
      const err = maxAbsDiff(got, ref) / norm;
      assert.ok(err <= 20 * n * Number.EPSILON, `relative error ${err}`);
    });
  }

  test('keeps tiny eigenvalues of an ill-conditioned covariance (absolute error ~ eps ‖A‖)', async () => {
    const n = 150;
    // 60 samples in 150 dimensions: 90 eigenvalues equal the shift exactly.
    const a = randomSpd(new Rng(4), n, 1e-9, 60);
    const ref = symmetricEigenvalues(a, n);
    const got = await symmetricEigenvaluesCompiled(a, n, kernels);
    const bound = 50 * n * Number.EPSILON * ref[n - 1]!;
    assert.ok(maxAbsDiff(got, ref) <= bound);
    for (let i = 0; i < 90; i++) assert.ok(Math.abs(got[i]! - 1e-9) <= bound, `λ${i} = ${got[i]}`);
    assert.ok(got[90]! > 1e-3);
  });

  test('panel QR: H_1···H_nr R rebuilds the panel, R upper, V unit lower', () => {
    const rng = new Rng(11);
    for (const [m, nb] of [
      [40, 6],
      [5, 8], // fewer rows than columns
    ] as const) {
      const p0 = new Float64Array(m * nb);
      rng.fillNormal(p0);
      for (let i = 0; i < m; i++) p0[i * nb + 2] = 0; // a zero column: H = I there
      const p = Float64Array.from(p0);
      const { v, tau, nr } = internals.panelQr(p, m, nb);
      assert.equal(nr, Math.min(m, nb));
      // R: zero below the diagonal.
      for (let i = 0; i < m; i++)
        for (let c = 0; c < Math.min(i, nb); c++) assert.equal(p[i * nb + c], 0, `R[${i},${c}]`);
      for (let j = 0; j < nr; j++) {
        assert.equal(v[j * nr + j], 1);
        for (let i = 0; i < j; i++) assert.equal(v[i * nr + j], 0);
      }
      // Apply H_1 ··· H_nr to R (the last reflector first): the panel again.
      const a = Float64Array.from(p);
      for (let j = nr - 1; j >= 0; j--) {
        for (let c = 0; c < nb; c++) {
          let s = 0;
          for (let i = 0; i < m; i++) s += v[i * nr + j]! * a[i * nb + c]!;
          for (let i = 0; i < m; i++) a[i * nb + c]! -= tau[j]! * s * v[i * nr + j]!;
        }
      }
      assert.ok(maxAbsDiff(a, p0) < 1e-13, `m=${m} nb=${nb}: ${maxAbsDiff(a, p0)}`);
    }
  });

  /** A random symmetric band matrix of half-width b, as band storage and dense. */
  function randomBand(rng: Rng, n: number, b: number): { band: Band; dense: Float64Array } {
    const band = new Band(n, b + 1);
    const dense = new Float64Array(n * n);
    for (let j = 0; j < n; j++)
      for (let i = j; i <= Math.min(n - 1, j + b); i++) {
        const v = rng.normal();
        band.data[band.at(i, j)] = v;
        dense[i * n + j] = v;
        dense[j * n + i] = v;
      }
    return { band, dense };
  }

  test('band stage: any band matrix reduces to a tridiagonal with the same spectrum', () => {
    const [n, b] = [57, 5];
    const { band, dense } = randomBand(new Rng(5), n, b);
    const { d, e } = bandToTridiagonal(band, b);
    assert.ok(maxAbsDiff(tridiagonalEigenvalues(d, e), symmetricEigenvalues(dense, n)) < 1e-12);
  });

  test('bandEigenvalues: the eigenvalues of the dense matrix the band stands for', () => {
    const [n, b] = [90, 7];
    const { band, dense } = randomBand(new Rng(8), n, b);
    const want = symmetricEigenvalues(dense, n);
    assert.ok(maxAbsDiff(bandEigenvalues(band, b), want) < 1e-12);
  });
});

describe('zero blocks (inputs that are always 0)', () => {
  test('QL on zero blocks joined by round-off', () => {
    // Two zero diagonals joined by 1e-20: deflated, and the eigenvalues exact.
    const d = [0, 0, 0, 2, 3];
    const e = [1e-20, 1e-20, 0, 0.5];
    const got = tridiagonalEigenvalues(d, e);
    // The 2x2 block [[2, 0.5], [0.5, 3]]: 2.5 ± sqrt(0.25 + 0.25).
    const r = Math.sqrt(0.5);
    assert.ok(maxAbsDiff(got, [0, 0, 0, 2.5 - r, 2.5 + r]) < 1e-15, String(got));
  });

  test('QL converges on a round-off cluster that stalled it (from the demo MLP)', () => {
    const { d, e } = JSON.parse(
      readFileSync(new URL('../fixtures/linalg/ql-stall.json', import.meta.url), 'utf8'),
    ) as { d: number[]; e: number[] };
    const got = tridiagonalEigenvalues(d, e);
    // Against the dense reference (Jacobi, a different algorithm), within eps · ‖T‖ · n.
    const n = d.length;
    const dense = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      dense[i * n + i] = d[i]!;
      if (i + 1 < n) dense[i * n + i + 1] = dense[(i + 1) * n + i] = e[i]!;
    }
    const ref = [...symmetricEigen(dense, n).values].sort((x, y) => x - y);
    assert.ok(maxAbsDiff(got, ref) < n * Number.EPSILON * 2, `${maxAbsDiff(got, ref)}`);
  });

  test('the compiled path on a covariance with exactly zero rows and columns', async () => {
    // As Fashion-MNIST's border pixels: 40 of 130 inputs are always 0.
    const rng = new Rng(11);
    const n = 130;
    const a = randomSpd(rng, n, 0.01);
    const dead = new Set(Array.from({ length: 40 }, (_, i) => (i * 7) % n));
    for (const i of dead)
      for (let j = 0; j < n; j++) {
        a[i * n + j] = 0;
        a[j * n + i] = 0;
      }
    const got = await symmetricEigenvaluesCompiled(a, n, kernels);
    const ref = symmetricEigenvalues(a, n);
    const scale = Math.max(...ref.map(Math.abs));
    assert.ok(maxAbsDiff(got, ref) < 20 * n * Number.EPSILON * scale, `${maxAbsDiff(got, ref)}`);
    assert.equal(ref.filter((v) => Math.abs(v) < 1e-12).length, dead.size);
  });
});

describe('fitDenoiserCompiled', () => {
  test('gives the reference denoiser and the spectrum of its fused map', async () => {
    const rng = new Rng(6);
    const d = 70;
    const rows = 400;
    // Features with decaying scales, some near the noise level.
    const x = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < d; i++) x[r * d + i] = rng.normal() * 2 ** (-i / 6) + 0.3;
    const acc = new MomentAccumulator(d).add(x, rows);
    const c = coefficients(makeSchedule(), 3);
    const ref = fitDenoiser(acc, c);
    const got = await fitDenoiserCompiled(acc, c, kernels);
    assert.ok(relFrobenius(got.Wd, ref.Wd) < 1e-11);
    assert.ok(relFrobenius(got.bd, ref.bd) < 1e-11);
    assert.equal(got.regularised, false);
    // The fused map's singular values from the covariance's eigenvalues equal those the
    // diagnostics compute from Wd itself.
    const fromCov = fusedMapSpectrum(got.covarianceEigenvalues, c);
    const fromWd = layerDiagnostics({ wd: ref.Wd, n: d, coeffs: c }).singularValues;
    assert.ok(maxAbsDiff(fromCov, fromWd) < 1e-12);
    assert.ok(fromCov[d - 1]! < 0.999, 'the weakest direction is shrunk');
  });

  test('adds the same jitter as the reference on a singular covariance', async () => {
    const d = 40;
    const rng = new Rng(7);
    const x = new Float32Array(30 * d); // only the first 5 features vary: S has rank 5
    for (let r = 0; r < 30; r++)
      for (let i = 0; i < d; i++) x[r * d + i] = i < 5 ? rng.normal() : 1;
    const acc = new MomentAccumulator(d).add(x, 30);
    const tiny = { s1: 1, s2: 1e-10 };
    const ref = fitDenoiser(acc, tiny);
    const got = await fitDenoiserCompiled(acc, tiny, kernels);
    assert.equal(got.regularised, true);
    assert.equal(got.jitter, ref.jitter);
    assert.ok(relFrobenius(got.Wd, ref.Wd) < 1e-12);
  });
});
