import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fitDenoiser, MomentAccumulator } from '../../src/denoise/closed-form.js';
import {
  denoiseMapSingularValues,
  layerDiagnostics,
  relativeWeightChange,
  summariseSingularValues,
} from '../../src/denoise/diagnostics-math.js';
import { fuseLinearInput } from '../../src/denoise/fuse-math.js';
import { matmul, singularValues } from '../../src/denoise/linalg.js';
import { coefficients, makeSchedule } from '../../src/denoise/schedule.js';
import { Rng } from '../../src/util/rng.js';
import { symmetricEigen } from './linalg-reference.js';

describe('diagnostics-math', () => {
  const schedule = makeSchedule();

  test('non-symmetric Wd: singular values of a shear by hand', () => {
    // c3 = 1, c1 = 1, Wd = [[0, -1], [0, 0]] -> M = [[1, 1], [0, 1]]: sv = golden ratio, 1/phi.
    const phi = (1 + Math.sqrt(5)) / 2;
    const r = denoiseMapSingularValues(new Float64Array([0, -1, 0, 0]), 2, { c1: 1, c3: 1 });
    assert.equal(r.symmetric, false);
    assert.ok(Math.abs(r.values[0]! - phi) < 1e-12 && Math.abs(r.values[1]! - 1 / phi) < 1e-12);
  });

  test('symmetric Wd: eigenvalue path agrees with the general path, including negative eigenvalues of M', () => {
    const rng = new Rng(1);
    const n = 12;
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = rng.normal();
    const coeffs = { c1: 0.8, c3: 1 }; // M = I - 0.8 A has eigenvalues of both signs
    const r = denoiseMapSingularValues(a, n, coeffs);
    assert.equal(r.symmetric, true);
    const m = Float64Array.from(a, (v) => -0.8 * v);
    for (let i = 0; i < n; i++) m[i * n + i]! += 1;
    const general = singularValues(m, n);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(r.values[i]! - general[i]!) < 1e-10);
    for (let i = 1; i < n; i++) assert.ok(r.values[i]! <= r.values[i - 1]!);
  });

  test('closed-form fit shrinks only low-variance directions (Wiener-like factor)', () => {
    // Independent features with std 10, 1, 0.01, 0.001 in a random rotation.
    const n = 4;
    const rows = 4000;
    const rng = new Rng(2);
    const q = symmetricEigen(
      Float64Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 2 : 0) + rng.normal()),
      n,
    ).vectors; // random orthogonal basis (eigenvectors of a random matrix)
    const stds = [10, 1, 0.01, 0.001];
    const x = new Float64Array(rows * n);
    for (let r = 0; r < rows; r++) {
      const z = stds.map((s) => s * rng.normal());
      const y = matmul(q, z, n, n, 1);
      for (let i = 0; i < n; i++) x[r * n + i] = y[i]! + 0.3;
    }
    const acc = new MomentAccumulator(n).add(x, rows);
    const lambdas = symmetricEigen(acc.covariance(), n).values;
    for (const t of [1, 2]) {
      const c = coefficients(schedule, t);
      const fit = fitDenoiser(acc, c);
      const w = rng.fillNormal(new Float64Array(3 * n));
      const fused = fuseLinearInput({
        weight: w,
        inFeatures: n,
        outFeatures: 3,
        layout: 'out-in',
        denoiser: { wd: fit.Wd, bd: fit.bd, e: fit.e },
        coeffs: c,
      });
      const diag = layerDiagnostics({
        wd: fit.Wd,
        n,
        coeffs: c,
        weight: w,
        fusedWeight: fused.weight,
      });
      assert.equal(diag.symmetric, true);
      // Eigenvalue of M on a direction of variance λ: (s1² λ + s2² - β) / (sqrt(α) (s1² λ + s2²)).
      const expected = Array.from(
        lambdas,
        (l) =>
          (c.s1 ** 2 * l + c.s2 ** 2 - c.beta) / (Math.sqrt(c.alpha) * (c.s1 ** 2 * l + c.s2 ** 2)),
      )
        .map(Math.abs)
        .sort((a, b) => b - a);
      for (let i = 0; i < n; i++)
        assert.ok(Math.abs(diag.singularValues[i]! - expected[i]!) < 1e-9, `t=${t} sv ${i}`);
      // The two high-variance directions are kept (factor ~ c3), the two below s2² shrunk.
      assert.equal(diag.summary.shrunk, 2);
      assert.ok(diag.summary.max > 0.9999 && diag.summary.max < 1.0001);
      if (t === 2)
        assert.ok(
          diag.summary.min > 0.49,
          `t=2 shrinks at most about half, got ${diag.summary.min}`,
        );
      else
        assert.ok(
          diag.summary.min < 0.05,
          `t=1 nearly removes a variance-1e-6 direction, got ${diag.summary.min}`,
        );
      assert.ok(diag.relativeWeightChange! > 0 && diag.relativeWeightChange! < 1);
    }
  });

  test('relative weight change and summary by hand', () => {
    assert.ok(Math.abs(relativeWeightChange([3, 4], [3, 4.5]) - 0.1) < 1e-15);
    assert.equal(relativeWeightChange([0, 0], [0, 0]), 0);
    assert.equal(relativeWeightChange([0], [1]), Number.POSITIVE_INFINITY);
    const s = summariseSingularValues([1.0001, 0.995, 0.5, 0.98]);
    assert.deepEqual(
      { ...s, mean: Number(s.mean.toFixed(6)) },
      { count: 4, min: 0.5, max: 1.0001, mean: 0.868775, shrunk: 2 },
    );
    // Fused W' = W M for a rotation-free M = 0.9 I changes W by exactly 10%.
    const w = new Float32Array([1, 2, 3, 4]);
    const f = fuseLinearInput({
      weight: w,
      inFeatures: 2,
      outFeatures: 2,
      layout: 'out-in',
      denoiser: {
        wd: new Float64Array([1, 0, 0, 1]),
        bd: new Float64Array(2),
        e: new Float64Array(2),
      },
      coeffs: { c1: 0.1, c2: 0, c3: 1 },
    });
    assert.ok(Math.abs(relativeWeightChange(w, f.weight) - 0.1) < 1e-7);
  });
});
