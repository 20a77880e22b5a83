// Fréchet distance against hand-worked cases: 1-D Gaussians, diagonal covariances, a 2x2
// pair that does not commute (tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det(S1 S2)))), and
// the sample statistics.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { frechetDistance, gaussianStats, type GaussianStats } from '../../src/diffusion/frechet.js';

const g = (mean: number[], cov: number[]): GaussianStats => ({
  dim: mean.length,
  n: 100,
  mean: Float64Array.from(mean),
  cov: Float64Array.from(cov),
});

describe('frechetDistance', () => {
  test('1-D: (m1 − m2)² + (s1 − s2)²', () => {
    assert.ok(Math.abs(frechetDistance(g([1], [4]), g([3], [9])) - (4 + 1)) < 1e-12);
  });

  test('diagonal: Σ (sqrt a_i − sqrt b_i)² plus the squared mean distance', () => {
    const diag = (v: number[]) => v.flatMap((x, i) => v.map((_, j) => (i === j ? x : 0)));
    const fd = frechetDistance(g([0, 1, 2], diag([1, 4, 9])), g([1, 1, 0], diag([4, 4, 1])));
    assert.ok(Math.abs(fd - (1 + 0 + 4 + (1 + 0 + 4))) < 1e-10, `${fd}`);
  });

  test('non-commuting 2x2 covariances', () => {
    const s1 = [2, 1, 1, 2];
    const s2 = [1, 0, 0, 3];
    // S1 S2 = [[2, 3], [1, 6]]: trace 8, det 9, so tr sqrt = sqrt(8 + 2·3) = sqrt(14).
    const want = 2 + 2 + 1 + 3 - 2 * Math.sqrt(14);
    const fd = frechetDistance(g([0, 0], s1), g([0, 0], s2));
    assert.ok(Math.abs(fd - want) < 1e-10, `${fd} vs ${want}`);
    assert.ok(Math.abs(frechetDistance(g([0, 0], s2), g([0, 0], s1)) - want) < 1e-10);
    assert.ok(frechetDistance(g([1, 2], s1), g([1, 2], s1)) < 1e-10);
  });

  test('gaussianStats: mean and the unbiased covariance', () => {
    const s = gaussianStats([1, 2, 3, 6, 5, 10], 3, 2);
    assert.deepEqual(Array.from(s.mean), [3, 6]);
    // Deviations (−2,−4), (0,0), (2,4): Σ/(n−1) = [[4, 8], [8, 16]].
    assert.deepEqual(Array.from(s.cov), [4, 8, 8, 16]);
    assert.throws(() => gaussianStats([1, 2], 1, 2), /at least 2 samples/);
  });
});
