import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  covarianceSpectrum,
  fitDenoiser,
  fitDenoiserSpectral,
  MomentAccumulator,
} from '../../src/denoise/closed-form.js';
import { matmul, symmetricEigen, transpose } from '../../src/denoise/linalg.js';
import { coefficients, makeSchedule } from '../../src/denoise/schedule.js';
import { DataError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { denoisingLossReference, expectedMseLoss } from './reference.js';

const d = 5;
const mu = [1, -2, 0.5, 3, 0];

/** n samples of x = mu + A z with a fixed mixing matrix A (covariance A Aᵀ). */
function gaussianData(rng: Rng, n: number): Float64Array {
  const a = new Float64Array([
    1, 0, 0, 0, 0, 0.5, 2, 0, 0, 0, 0, 0.3, 0.2, 0, 0, 1, 0, 0, 0.05, 0, 0, 0.1, 0, 0, 0.7,
  ]);
  const x = new Float64Array(n * d);
  const z = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    rng.fillNormal(z);
    for (let i = 0; i < d; i++) {
      let s = mu[i]!;
      for (let j = 0; j < d; j++) s += a[i * d + j]! * z[j]!;
      x[r * d + i] = s;
    }
  }
  return x;
}

/** Two-pass centred mean and population covariance, independent of the accumulator. */
function twoPass(
  x: Float64Array,
  n: number,
  dim: number,
): { mean: Float64Array; cov: Float64Array } {
  const mean = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let i = 0; i < dim; i++) mean[i]! += x[r * dim + i]! / n;
  const cov = new Float64Array(dim * dim);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < dim; i++) {
      for (let j = 0; j < dim; j++)
        cov[i * dim + j]! += ((x[r * dim + i]! - mean[i]!) * (x[r * dim + j]! - mean[j]!)) / n;
    }
  }
  return { mean, cov };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Empirical per-element MSE of eps_hat = wd (x_t + e) + bd on given x and eps. */
function empiricalMse(
  x: Float64Array,
  eps: Float64Array,
  n: number,
  s1: number,
  s2: number,
  wd: Float64Array,
  bd: Float64Array,
): number {
  let sum = 0;
  const xt = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < d; i++) xt[i] = s1 * x[r * d + i]! + s2 * eps[r * d + i]!;
    for (let i = 0; i < d; i++) {
      let p = bd[i]!;
      for (let j = 0; j < d; j++) p += wd[i * d + j]! * xt[j]!;
      sum += (eps[r * d + i]! - p) ** 2;
    }
  }
  return sum / (n * d);
}

describe('MomentAccumulator', () => {
  const n = 3000;
  const x = gaussianData(new Rng(1), n);

  test('mean and covariance match a two-pass computation', () => {
    const acc = new MomentAccumulator(d).add(x, n);
    const { mean, cov } = twoPass(x, n, d);
    assert.equal(acc.count, n);
    assert.ok(maxAbsDiff(acc.mean(), mean) < 1e-12);
    assert.ok(maxAbsDiff(acc.covariance(), cov) < 1e-11);
    // and close to the generating covariance (A Aᵀ)_{11} = 0.25 + 4 = 4.25
    assert.ok(Math.abs(cov[1 * d + 1]! - 4.25) < 0.4);
  });

  test('merging 3 shards in any order equals one pass', () => {
    const whole = new MomentAccumulator(d).add(x, n);
    const cuts = [0, 700, 2100, n];
    const shards = [0, 1, 2].map((k) =>
      new MomentAccumulator(d).add(
        x.subarray(cuts[k]! * d, cuts[k + 1]! * d),
        cuts[k + 1]! - cuts[k]!,
      ),
    );
    for (const order of [
      [0, 1, 2],
      [2, 0, 1],
    ]) {
      const merged = new MomentAccumulator(d);
      for (const k of order) merged.merge(shards[k]!);
      assert.equal(merged.count, n);
      assert.ok(maxAbsDiff(merged.sum, whole.sum) <= 1e-12 * n);
      assert.ok(maxAbsDiff(merged.gram, whole.gram) <= 1e-12 * n * 10);
    }
    assert.throws(() => whole.merge(new MomentAccumulator(d + 1)), /dims differ/);
  });

  test('serialize / deserialize round trip and corrupt files', () => {
    const acc = new MomentAccumulator(d).add(x, 100);
    const buf = acc.serialize();
    assert.equal(buf.length, 24 + 8 * (d + d * d));
    const back = MomentAccumulator.deserialize(buf, 'stats/fc1.bin');
    assert.equal(back.dim, d);
    assert.equal(back.count, 100);
    assert.deepEqual(back.sum, acc.sum);
    assert.deepEqual(back.gram, acc.gram);
    // Works on a view into a larger buffer, too.
    const padded = new Uint8Array(buf.length + 3);
    padded.set(buf, 3);
    assert.deepEqual(MomentAccumulator.deserialize(padded.subarray(3), 'x').gram, acc.gram);
    assert.throws(
      () => MomentAccumulator.deserialize(buf.subarray(0, buf.length - 8), 'stats/fc1.bin'),
      (e: Error) =>
        e instanceof DataError && /stats\/fc1\.bin/.test(e.message) && /expected/.test(e.message),
    );
    assert.throws(
      () => MomentAccumulator.deserialize(buf.subarray(0, 10), 'short.bin'),
      /short\.bin.*too short/,
    );
    const bad = Uint8Array.from(buf);
    bad[0] = 0x58;
    assert.throws(() => MomentAccumulator.deserialize(bad, 'bad.bin'), /bad\.bin.*magic/);
    const badVersion = Uint8Array.from(buf);
    badVersion[8] = 9;
    assert.throws(() => MomentAccumulator.deserialize(badVersion, 'v.bin'), /v\.bin.*version 9/);
  });
});

describe('fitDenoiser', () => {
  const schedule = makeSchedule();

  test('matches Wd = s2 V diag(1 / (s1² λ + s2²)) Vᵀ and bd = -s1 Wd mu', () => {
    const n = 4000;
    const x = gaussianData(new Rng(2), n);
    const acc = new MomentAccumulator(d).add(x, n);
    for (const t of [3, 400]) {
      const c = coefficients(schedule, t);
      const fit = fitDenoiser(acc, c);
      assert.equal(fit.regularised, false);
      assert.equal(fit.jitter, 0);
      assert.deepEqual(Array.from(fit.e), new Array(d).fill(0));
      const { mean, cov } = twoPass(x, n, d);
      const { values, vectors } = symmetricEigen(cov, d);
      const scaled = new Float64Array(d * d);
      for (let i = 0; i < d; i++) {
        for (let k = 0; k < d; k++)
          scaled[i * d + k] = (vectors[i * d + k]! * c.s2) / (c.s1 ** 2 * values[k]! + c.s2 ** 2);
      }
      const expected = matmul(scaled, transpose(vectors, d, d), d, d, d);
      const scale = Math.max(...Array.from(expected, Math.abs));
      assert.ok(
        maxAbsDiff(fit.Wd, expected) < 1e-9 * scale,
        `t=${t}: ${maxAbsDiff(fit.Wd, expected)}`,
      );
      const wmu = matmul(expected, mean, d, d, 1);
      assert.ok(
        maxAbsDiff(
          fit.bd,
          Array.from(wmu, (v) => -c.s1 * v),
        ) <
          1e-8 * scale,
      );
      // Symmetric exactly (the diagnostics rely on it).
      for (let i = 0; i < d; i++)
        for (let j = 0; j < d; j++) assert.equal(fit.Wd[i * d + j], fit.Wd[j * d + i]);
    }
  });

  test('from one eigendecomposition: the direct solve at every noise scale and ridge', () => {
    const n = 3000;
    const acc = new MomentAccumulator(d).add(gaussianData(new Rng(6), n), n);
    const spec = covarianceSpectrum(acc);
    assert.ok(spec.values.every((v, i) => v >= 0 && (i === 0 || v >= spec.values[i - 1]!)));
    for (const noiseScale of [1, 3, 10, 30, 100]) {
      const s = makeSchedule({ noiseScale });
      for (const t of [1, 5, 26]) {
        const c = coefficients(s, t);
        for (const ridge of [0, 1e-3]) {
          const direct = fitDenoiser(acc, c, { ridge });
          const spectral = fitDenoiserSpectral(spec, c, { ridge });
          const scale = Math.max(...Array.from(direct.Wd, Math.abs));
          const what = `k=${noiseScale} t=${t} ridge=${ridge}`;
          assert.ok(maxAbsDiff(spectral.Wd, direct.Wd) < 1e-10 * scale, what);
          assert.ok(maxAbsDiff(spectral.bd, direct.bd) < 1e-10 * scale * 10, what);
          for (let i = 0; i < d; i++)
            for (let j = 0; j < d; j++)
              assert.equal(spectral.Wd[i * d + j], spectral.Wd[j * d + i]);
        }
      }
    }
    assert.throws(() => fitDenoiserSpectral(spec, { s1: 1, s2: 0 }), /s2 = 0/);
  });

  test('a singular covariance with tiny s2 is regularised; a regular one is not', () => {
    const n = 500;
    const rng = new Rng(3);
    const x = new Float64Array(n * 3);
    for (let r = 0; r < n; r++) {
      const a = 1 + rng.normal();
      x[r * 3] = a;
      x[r * 3 + 1] = a; // duplicated feature: S is singular
      x[r * 3 + 2] = rng.normal();
    }
    const tiny = { s1: 1, s2: 1e-10 };
    const fit = fitDenoiser(new MomentAccumulator(3).add(x, n), tiny);
    assert.equal(fit.regularised, true);
    assert.ok(fit.jitter > 0);
    assert.ok(fit.Wd.every(Number.isFinite) && fit.bd.every(Number.isFinite));
    const regular = gaussianData(new Rng(4), 500);
    const ok = fitDenoiser(new MomentAccumulator(d).add(regular, 500), tiny);
    assert.equal(ok.regularised, false);
  });

  test('non-finite statistics and empty statistics are data errors', () => {
    const acc = new MomentAccumulator(2).add(new Float64Array([1, Number.NaN]), 1);
    assert.throws(
      () => fitDenoiser(acc, { s1: 1, s2: 0.1 }, { name: 'blocks.0.mlp.fc1' }),
      (e: Error) => e instanceof DataError && /blocks\.0\.mlp\.fc1/.test(e.message),
    );
    assert.throws(() => fitDenoiser(new MomentAccumulator(2), { s1: 1, s2: 0.1 }), DataError);
  });

  test('the fit minimises the Monte Carlo MSE and expectedMseLoss matches it', () => {
    const n = 20000;
    const rng = new Rng(5);
    const x = gaussianData(rng.fork('x'), n);
    const eps = rng.fork('eps').fillNormal(new Float64Array(n * d));
    const acc = new MomentAccumulator(d).add(x, n);
    const c = coefficients(schedule, 500);
    const fit = fitDenoiser(acc, c);
    const best = empiricalMse(x, eps, n, c.s1, c.s2, fit.Wd, fit.bd);
    const expected = expectedMseLoss(acc, c, fit.Wd, fit.bd, fit.e);
    assert.ok(Math.abs(best - expected) / expected < 0.03, `MC ${best} vs closed form ${expected}`);
    // The trivial predictor 0 has MSE 1; the fit must do better.
    assert.ok(expected < 0.9);
    const prng = rng.fork('perturb');
    for (let k = 0; k < 6; k++) {
      const wd = Float64Array.from(fit.Wd, (v) => v + 0.05 * prng.normal());
      const mc = empiricalMse(x, eps, n, c.s1, c.s2, wd, fit.bd);
      assert.ok(mc > best, `perturbation ${k}: ${mc} <= ${best}`);
      assert.ok(expectedMseLoss(acc, c, wd, fit.bd, fit.e) > expected);
    }
    // A time embedding e is equivalent to a bias Wd e: same expected loss.
    const e = Float64Array.from({ length: d }, (_, i) => i - 2);
    const bdShift = Float64Array.from(fit.bd, (v, i) => v - matmul(fit.Wd, e, d, d, 1)[i]!);
    assert.ok(Math.abs(expectedMseLoss(acc, c, fit.Wd, bdShift, e) - expected) < 1e-12);
  });
});

describe('denoisingLossReference', () => {
  test('L1 + MSE by hand', () => {
    // residuals -1, 1, 0: L1 = 2/3, MSE = 2/3
    assert.ok(Math.abs(denoisingLossReference([0, 0, 1], [1, -1, 1]) - 4 / 3) < 1e-15);
    assert.ok(Math.abs(denoisingLossReference([0.5], [0]) - 0.75) < 1e-15);
    assert.throws(() => denoisingLossReference([1], [1, 2]), /lengths/);
  });
});
