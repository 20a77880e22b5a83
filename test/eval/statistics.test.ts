import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bootstrapMean,
  describeDifference,
  logGamma,
  mcnemarExact,
  mcnemarFromCounts,
  normalQuantile,
  pairedBootstrap,
  quantileSorted,
  regularizedIncompleteBeta,
  studentTCdf,
  studentTQuantile,
  tInterval,
  verdict,
  wilsonInterval,
} from '../../src/eval/statistics.js';
import { corruptionErrors } from '../../src/eval/robustness.js';
import { DataError, UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const near = (a: number, b: number, tol: number, what = '') =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);

describe('special functions', () => {
  test('log-gamma at integers and at 1/2', () => {
    near(logGamma(1), 0, 1e-14);
    near(logGamma(10), Math.log(362880), 1e-12);
    near(logGamma(0.5), 0.5 * Math.log(Math.PI), 1e-13);
    near(logGamma(0.1), Math.log(9.513507698668732), 1e-12);
  });

  test('incomplete beta: I_x(1,1) = x, I_x(a,1) = x^a, I_½(a,a) = ½, and a binomial tail', () => {
    near(regularizedIncompleteBeta(0.3, 1, 1), 0.3, 1e-14);
    near(regularizedIncompleteBeta(0.7, 3, 1), 0.343, 1e-13);
    near(regularizedIncompleteBeta(0.5, 4.5, 4.5), 0.5, 1e-13);
    // I_x(2, 3) = P(Binomial(4, x) >= 2) = 1 − 0.7⁴ − 4·0.3·0.7³ = 0.3483 at x = 0.3.
    near(regularizedIncompleteBeta(0.3, 2, 3), 0.3483, 1e-13);
  });

  test('t CDF: symmetric, and for df = 1 the Cauchy CDF ½ + atan(t)/π', () => {
    near(studentTCdf(0, 5), 0.5, 1e-15);
    near(studentTCdf(-1.3, 7) + studentTCdf(1.3, 7), 1, 1e-14);
    for (const t of [-3, -0.5, 0.2, 4])
      near(studentTCdf(t, 1), 0.5 + Math.atan(t) / Math.PI, 1e-13);
    // df = 2 has the closed form ½ + t / (2√(2 + t²)).
    for (const t of [0.7, 2.5])
      near(studentTCdf(t, 2), 0.5 + t / (2 * Math.sqrt(2 + t * t)), 1e-13);
  });

  test('t quantiles: 4.303 for df = 2, 12.706 for df = 1, 2.228 for df = 10, → 1.960', () => {
    // df = 2 exactly: t = (2p − 1)·√(2 / (1 − (2p − 1)²)), p = 0.975: 0.95·√(2/0.0975).
    near(studentTQuantile(0.975, 2), 0.95 * Math.sqrt(2 / 0.0975), 1e-8);
    assert.equal(studentTQuantile(0.975, 2).toFixed(3), '4.303');
    // df = 1: tan(π (p − ½)).
    near(studentTQuantile(0.975, 1), Math.tan(Math.PI * 0.475), 1e-7);
    assert.equal(studentTQuantile(0.975, 10).toFixed(3), '2.228');
    assert.equal(studentTQuantile(0.975, 1e7).toFixed(3), '1.960');
    near(studentTQuantile(0.025, 4), -studentTQuantile(0.975, 4), 1e-12);
    near(studentTCdf(studentTQuantile(0.9, 3.5), 3.5), 0.9, 1e-12);
  });
});

describe('tInterval', () => {
  test('[1, 2, 3]: mean 2, sd 1, half-width 4.303/√3', () => {
    const r = tInterval([1, 2, 3]);
    near(r.mean, 2, 1e-15);
    near(r.sd, 1, 1e-15);
    const half = studentTQuantile(0.975, 2) / Math.sqrt(3);
    near(r.ci![0], 2 - half, 1e-12);
    near(r.ci![1], 2 + half, 1e-12);
    near(half, 2.4841, 1e-4);
  });

  test('one value: no interval; level changes the width', () => {
    assert.equal(tInterval([0.5]).ci, null);
    const w95 = tInterval([1, 4, 2, 8]).ci!;
    const w80 = tInterval([1, 4, 2, 8], 0.8).ci!;
    assert.ok(w80[1] - w80[0] < w95[1] - w95[0]);
    assert.throws(() => tInterval([]), DataError);
    assert.throws(() => tInterval([1, 2], 1.5), UsageError);
  });
});

describe('McNemar (exact)', () => {
  test('hand-worked tables', () => {
    // b = 1, c = 6: n = 7, P(X <= 1) = (1 + 7)/128, two-sided 0.125.
    near(mcnemarFromCounts(1, 6), 0.125, 1e-14);
    // b = 2, c = 8: P(X <= 2) = (1 + 10 + 45)/1024 = 56/1024, two-sided 0.109375.
    near(mcnemarFromCounts(8, 2), 0.109375, 1e-14);
    // b = 0, c = 5: 2/32.
    near(mcnemarFromCounts(0, 5), 0.0625, 1e-14);
    assert.equal(mcnemarFromCounts(4, 4), 1);
    assert.equal(mcnemarFromCounts(0, 0), 1);
  });

  test('counts the discordant pairs of two correctness vectors', () => {
    const a = [1, 1, 1, 0, 0, 1, 0, 1];
    const b = [1, 0, 0, 1, 0, 0, 0, 0];
    const r = mcnemarExact(a, b);
    assert.equal(r.b, 4); // a right, b wrong: items 1, 2, 5, 7
    assert.equal(r.c, 1); // item 3
    near(r.pValue, (2 * (1 + 5)) / 32, 1e-14);
    assert.throws(() => mcnemarExact([1], [1, 0]), DataError);
  });

  test('large counts stay finite and symmetric', () => {
    const p = mcnemarFromCounts(2000, 2100);
    assert.ok(p > 0.1 && p < 0.15, `${p}`);
    near(p, mcnemarFromCounts(2100, 2000), 1e-12);
    assert.ok(mcnemarFromCounts(2000, 2400) < 1e-8);
  });
});

describe('bootstrap', () => {
  test('a constant difference has a zero-width interval at it; equal models say no difference', () => {
    const a = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const shifted = a.map((v) => v + 0.25);
    const d = pairedBootstrap(shifted, a, { seed: 1, resamples: 1000 });
    near(d.mean, 0.25, 1e-12);
    near(d.ci[0], 0.25, 1e-12);
    near(d.ci[1], 0.25, 1e-12);
    const same = pairedBootstrap(a, a, { seed: 1, resamples: 1000 });
    assert.deepEqual(same.ci, [0, 0]);
    assert.equal(verdict(same), 'no detectable difference');
  });

  test('the interval of a proportion matches the normal approximation; the seed repeats it', () => {
    const rng = new Rng(3);
    const x = Array.from({ length: 2000 }, () => (rng.uniform() < 0.3 ? 1 : 0));
    const r = bootstrapMean(x, { seed: 7 });
    const p = r.mean;
    const half = 1.96 * Math.sqrt((p * (1 - p)) / x.length);
    near((r.ci[1] - r.ci[0]) / 2, half, 0.15 * half, 'half-width');
    assert.ok(r.ci[0] < p && p < r.ci[1]);
    assert.deepEqual(bootstrapMean(x, { seed: 7 }).ci, r.ci);
    assert.notDeepEqual(bootstrapMean(x, { seed: 8 }).ci, r.ci);
  });

  test('pairing: two models that disagree on 30 of 2,000 images get a narrow interval', () => {
    const rng = new Rng(5);
    const a = Array.from({ length: 2000 }, () => (rng.uniform() < 0.8 ? 1 : 0));
    const b = a.slice();
    // b loses 20 images a gets right and wins 10 that a gets wrong: a − b = +10/2000.
    let lost = 0;
    let won = 0;
    for (let i = 0; i < 2000 && (lost < 20 || won < 10); i++) {
      if (a[i] === 1 && lost < 20) {
        b[i] = 0;
        lost++;
      } else if (a[i] === 0 && won < 10) {
        b[i] = 1;
        won++;
      }
    }
    const d = pairedBootstrap(a, b, { seed: 0 });
    near(d.mean, 10 / 2000, 1e-12);
    // Discordant-only variance: sd of the mean ≈ √30/2000 ≈ 0.0027, so ±0.0054, far
    // narrower than an unpaired interval (±0.025 for two accuracies of 0.8).
    near((d.ci[1] - d.ci[0]) / 2, (1.96 * Math.sqrt(30 - 100 / 2000)) / 2000, 0.0012);
    assert.equal(verdict(d), 'no detectable difference');
  });

  test('fewer than 1,000 resamples, empty or mismatched samples are refused', () => {
    assert.throws(() => bootstrapMean([1, 0], { resamples: 999 }), UsageError);
    assert.throws(() => bootstrapMean([]), DataError);
    assert.throws(() => pairedBootstrap([1], [1, 0]), DataError);
    assert.throws(() => bootstrapMean([1, NaN]), DataError);
  });
});

describe('verdicts', () => {
  test('an interval containing 0 is "no detectable difference"; otherwise higher or lower', () => {
    assert.equal(verdict({ mean: 0.1, ci: [-0.2, 0.4] }), 'no detectable difference');
    assert.equal(verdict({ mean: 0.1, ci: [0, 0.4] }), 'no detectable difference');
    assert.equal(verdict({ mean: 0.3, ci: [0.1, 0.4] }), 'higher');
    assert.equal(verdict({ mean: -0.3, ci: [-0.5, -0.01] }), 'lower');
    assert.equal(verdict({ mean: -0.3, ci: null }), 'unknown');
    assert.equal(
      describeDifference({ mean: 0.012, ci: [0.004, 0.02] }, 100),
      '+1.20 [+0.40, +2.00] higher',
    );
    assert.equal(
      describeDifference({ mean: -0.001, ci: [-0.004, 0.002] }, 100),
      '−0.10 [−0.40, +0.20] no detectable difference',
    );
  });

  test('type-7 quantiles', () => {
    assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
    assert.equal(quantileSorted([1, 2, 3, 4], 0), 1);
    assert.equal(quantileSorted([1, 2, 3, 4], 1), 4);
    near(quantileSorted([0, 10], 0.025), 0.25, 1e-15);
  });
});

describe('corruption errors', () => {
  test('CE is the ratio of error sums over severities; mCE their mean', () => {
    const r = corruptionErrors(
      { jpeg: [0.1, 0.3], blur: [0.2, 0.2] },
      { jpeg: [0.2, 0.2], blur: [0.1, 0.3] },
    );
    near(r.perCorruption.jpeg!, 1, 1e-15);
    near(r.perCorruption.blur!, 1, 1e-15);
    const s = corruptionErrors({ a: [0.05, 0.15] }, { a: [0.1, 0.3] });
    near(s.mCE, 0.5, 1e-15);
    const t = corruptionErrors(
      { a: [0.05, 0.15], b: [0.3, 0.3] },
      { a: [0.1, 0.3], b: [0.2, 0.2] },
    );
    near(t.mCE, (0.5 + 1.5) / 2, 1e-15);
    assert.throws(() => corruptionErrors({ a: [0.1] }, { a: [0.1, 0.2] }), DataError);
    assert.throws(() => corruptionErrors({ a: [0.1] }, { a: [0] }), DataError);
  });
});

describe('binomial proportion', () => {
  test('normal quantiles against tabulated values', () => {
    assert.ok(Math.abs(normalQuantile(0.975) - 1.959963984540054) < 1e-8);
    assert.equal(normalQuantile(0.5), 0);
    assert.ok(Math.abs(normalQuantile(0.01) + 2.326347874040841) < 1e-8);
    assert.ok(Math.abs(normalQuantile(1e-6) + 4.753424308822899) < 1e-7);
    assert.ok(Math.abs(normalQuantile(0.9) + normalQuantile(0.1)) < 1e-12);
    assert.throws(() => normalQuantile(1), UsageError);
  });

  test('Wilson intervals worked by hand', () => {
    // 8 of 10: centre (0.8 + z²/20)/(1 + z²/10), half z/(1 + z²/10)·sqrt(0.016 + z²/400).
    const w = wilsonInterval(8, 10);
    assert.equal(w.mean, 0.8);
    assert.ok(Math.abs(w.ci![0] - 0.490164) < 1e-5 && Math.abs(w.ci![1] - 0.943318) < 1e-5);
    // 0 of n: [0, z²/(n + z²)]; n of n: [n/(n + z²), 1].
    const z2 = 1.959963984540054 ** 2;
    const zero = wilsonInterval(0, 10).ci!;
    assert.equal(zero[0], 0);
    assert.ok(Math.abs(zero[1] - z2 / (10 + z2)) < 1e-9);
    const all = wilsonInterval(10, 10).ci!;
    assert.ok(Math.abs(all[0] - 10 / (10 + z2)) < 1e-9 && all[1] === 1);
    // A wider level, a wider interval; the 10,000-image scale is about ±0.7 points at 84%.
    const [lo, hi] = wilsonInterval(8425, 10000).ci!;
    assert.ok(hi - lo > 0.014 && hi - lo < 0.0146, `${lo} ${hi}`);
    assert.ok(wilsonInterval(8, 10, 0.99).ci![0] < w.ci![0]);
    assert.throws(() => wilsonInterval(11, 10), UsageError);
    assert.throws(() => wilsonInterval(1.5, 10), UsageError);
  });
});
