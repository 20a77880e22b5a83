// Retrieval metrics (Market-1501 protocol) on cases worked out by hand, plus a check of the
// rank computation against a plain full sort on random data.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { distanceMatrix, evaluateRetrieval } from '../../src/eval/retrieval.js';
import { DataError, UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('evaluateRetrieval', () => {
  // Gallery:     g0      g1      g2      g3        g4      g5
  //   id         1       2       1       -1 (junk) 1       2
  //   camera     0       1       1       0         2       0
  const gLabels = [1, 2, 1, -1, 1, 2];
  const gCams = [0, 1, 1, 0, 2, 0];
  // q0: id 1, camera 0.  q1: id 2, camera 1.
  const qLabels = [1, 2];
  const qCams = [0, 1];
  const dist = [
    [0.1, 0.2, 0.4, 0.05, 0.3, 0.5], // q0 order: g3 g0 g1 g4 g2 g5
    [0.6, 0.1, 0.3, 0.2, 0.4, 0.5], // q1 order: g1 g3 g2 g4 g5 g0
  ].flat();

  test('with cameras: same-id same-camera items and junk removed', () => {
    // q0: g3 junk, g0 same id and camera -> removed. Kept: g1 ✗(1) g4 ✓(2) g2 ✓(3) g5 ✗(4).
    //     AP = (1/2 + 2/3) / 2 = 7/12; first match at rank 2.
    // q1: g3 junk, g1 same id and camera -> removed. Kept: g2 ✗(1) g4 ✗(2) g5 ✓(3) g0 ✗(4).
    //     AP = (1/3) / 1 = 1/3; first match at rank 3.
    // mAP = (7/12 + 4/12) / 2 = 11/24; CMC@1..4 = [0, 1/2, 1, 1].
    const r = evaluateRetrieval({ dist, qLabels, gLabels, qCams, gCams, maxRank: 4 });
    close(r.mAP, 11 / 24);
    assert.deepEqual(r.cmc, [0, 0.5, 1, 1]);
    assert.equal(r.rank1, 0);
    assert.equal(r.rank5, 1);
    assert.equal(r.rank10, 1);
    assert.equal(r.validQueries, 2);
    assert.equal(r.skippedQueries, 0);
  });

  test('without cameras only junk is removed: rank-1 and AP change', () => {
    // q0: g0 ✓(1) g1 ✗(2) g4 ✓(3) g2 ✓(4) g5 ✗(5): AP = (1/1 + 2/3 + 3/4) / 3 = 29/36.
    // q1: g1 ✓(1) g2 ✗(2) g4 ✗(3) g5 ✓(4) g0 ✗(5): AP = (1/1 + 2/4) / 2 = 3/4.
    // mAP = (29/36 + 27/36) / 2 = 7/9; both queries hit at rank 1. Had the junk g3 been
    // kept, q0's first item would be a miss.
    const r = evaluateRetrieval({ dist, qLabels, gLabels });
    close(r.mAP, 7 / 9);
    assert.equal(r.rank1, 1);
    assert.equal(r.cmc.length, 10);
    assert.equal(r.queryAP, undefined);
    const per = evaluateRetrieval({ dist, qLabels, gLabels, perQuery: true }).queryAP!;
    close(per[0]!, 29 / 36);
    close(per[1]!, 3 / 4);
  });

  test('a query without a valid match is skipped and counted', () => {
    // Gallery ids [4, 4, -1, 1], cameras [0, 0, 1, 1].
    // qa: id 4, camera 0 -> both id-4 items share its camera -> skipped.
    // qb: id 9 -> no match at all -> skipped.
    // qc: id 1, camera 0 -> junk g2 removed: g0 ✗(1) g1 ✗(2) g3 ✓(3) -> AP 1/3.
    const row = [0.1, 0.2, 0.3, 0.4];
    const r = evaluateRetrieval({
      dist: [...row, ...row, ...row],
      qLabels: [4, 9, 1],
      gLabels: [4, 4, -1, 1],
      qCams: [0, 0, 0],
      gCams: [0, 0, 1, 1],
      maxRank: 3,
    });
    assert.equal(r.validQueries, 1);
    assert.equal(r.skippedQueries, 2);
    close(r.mAP, 1 / 3);
    const per = evaluateRetrieval({
      dist: [...row, ...row, ...row],
      qLabels: [4, 9, 1],
      gLabels: [4, 4, -1, 1],
      qCams: [0, 0, 0],
      gCams: [0, 0, 1, 1],
      perQuery: true,
    }).queryAP!;
    assert.ok(Number.isNaN(per[0]) && Number.isNaN(per[1]));
    close(per[2]!, 1 / 3);
    assert.deepEqual(r.cmc, [0, 0, 1]);
  });

  test('junk is removed even when it is the nearest item', () => {
    // Junk at 0.1, the match at 0.2: AP 1, not 1/2.
    const r = evaluateRetrieval({ dist: [0.1, 0.2], qLabels: [3], gLabels: [-1, 3], maxRank: 1 });
    assert.equal(r.mAP, 1);
    assert.deepEqual(r.cmc, [1]);
  });

  test('equal distances rank by gallery index', () => {
    // Both at 0.5: the non-match g0 comes first -> AP 1/2; swapped labels -> AP 1.
    const a = evaluateRetrieval({ dist: [0.5, 0.5], qLabels: [1], gLabels: [2, 1] });
    const b = evaluateRetrieval({ dist: [0.5, 0.5], qLabels: [1], gLabels: [1, 2] });
    assert.equal(a.mAP, 0.5);
    assert.equal(b.mAP, 1);
  });

  test('same ranks as a full stable sort on random data with ties, cameras and junk', () => {
    const rng = new Rng(7);
    const nq = 30;
    const ng = 80;
    // Distances on a coarse grid so that many tie.
    const dist = Array.from({ length: nq * ng }, () => rng.int(12) / 4);
    const qLabels = Array.from({ length: nq }, () => rng.int(9)); // ids 6..8: never in the gallery
    const gLabels = Array.from({ length: ng }, () => rng.int(7) - 1);
    const qCams = Array.from({ length: nq }, () => rng.int(3));
    const gCams = Array.from({ length: ng }, () => rng.int(3));
    // Reference: sort the whole gallery, filter, walk the list.
    let apSum = 0;
    let valid = 0;
    const cmc = new Array<number>(5).fill(0);
    for (let i = 0; i < nq; i++) {
      const order = [...Array(ng).keys()].sort(
        (a, b) => dist[i * ng + a]! - dist[i * ng + b]! || a - b,
      );
      const kept = order.filter(
        (j) => gLabels[j] !== -1 && !(gLabels[j] === qLabels[i] && gCams[j] === qCams[i]),
      );
      const hitRanks = kept.flatMap((j, r) => (gLabels[j] === qLabels[i] ? [r + 1] : []));
      if (hitRanks.length === 0) continue;
      valid++;
      apSum += hitRanks.reduce((s, r, h) => s + (h + 1) / r, 0) / hitRanks.length;
      for (let k = hitRanks[0]! - 1; k < 5; k++) cmc[k]!++;
    }
    const r = evaluateRetrieval({ dist, qLabels, gLabels, qCams, gCams, maxRank: 5 });
    assert.ok(valid > 10 && valid < nq, `the case should skip some queries (valid ${valid})`);
    assert.equal(r.validQueries, valid);
    close(r.mAP, apSum / valid);
    r.cmc.forEach((c, k) => close(c, cmc[k]! / valid));
  });

  test('argument errors', () => {
    assert.throws(
      () => evaluateRetrieval({ dist: [1, 2, 3], qLabels: [1], gLabels: [1, 2] }),
      DataError,
    );
    assert.throws(
      () => evaluateRetrieval({ dist: [1], qLabels: [1], gLabels: [1], qCams: [0] }),
      UsageError,
    );
    assert.throws(
      () => evaluateRetrieval({ dist: [Number.NaN], qLabels: [1], gLabels: [1] }),
      /query 0 to gallery item 0 is NaN/,
    );
    assert.throws(
      () => evaluateRetrieval({ dist: [1], qLabels: [1], gLabels: [1], maxRank: 0 }),
      /maxRank/,
    );
  });
});

describe('distanceMatrix', () => {
  // q = (3, 4); gallery g0 = (0, 0), g1 = (3, 0), g2 = (−3, −4), g3 = (6, 8).
  const q = Float32Array.from([3, 4]);
  const g = Float32Array.from([0, 0, 3, 0, -3, -4, 6, 8]);

  test('euclidean: plain L2 distances', () => {
    // q − g0 = (3, 4) -> 5; q − g1 = (0, 4) -> 4; q − g2 = (6, 8) -> 10; q − g3 = (−3, −4) -> 5.
    assert.deepEqual(Array.from(distanceMatrix(q, g, 2)), [5, 4, 10, 5]);
  });

  test('cosine: 1 − cos, a zero vector at distance 1', () => {
    // cos with g1 = 3/5 -> 0.4; with g2 = −1 -> 2; with g3 = 1 -> 0.
    const c = distanceMatrix(q, g, 2, { metric: 'cosine' });
    [1, 0.4, 2, 0].forEach((want, j) => close(c[j]!, want));
  });

  test('euclidean on L2-normalised features is √(2 − 2 cos)', () => {
    // q̂ = (0.6, 0.8): to (1, 0) √(0.16 + 0.64) = √0.8; to (−0.6, −0.8) 2; to itself 0;
    // the zero vector stays at zero, so its distance is |q̂| = 1.
    const e = distanceMatrix(q, g, 2, { metric: 'euclidean', l2norm: true });
    [1, Math.sqrt(0.8), 2, 0].forEach((want, j) => close(e[j]!, want, 1e-7));
  });

  test('the metric changes the ranking: cosine finds the scaled copy first', () => {
    // The true match is g3 = 2q. Euclidean: g1 (4), then g0 and g3 tie at 5 and rank by
    // index, then g2 (10) -> the match is 3rd, AP 1/3. Cosine: g3 first (0), AP 1.
    const labels = { qLabels: [1], gLabels: [0, 0, 0, 1] };
    const eu = evaluateRetrieval({ dist: distanceMatrix(q, g, 2), ...labels });
    const co = evaluateRetrieval({
      dist: distanceMatrix(q, g, 2, { metric: 'cosine' }),
      ...labels,
    });
    assert.equal(eu.mAP, 1 / 3);
    assert.equal(co.mAP, 1);
  });

  test('matches a direct (q − g) computation on random features; shape errors', () => {
    const rng = new Rng(3);
    const dim = 5;
    const a = rng.fillNormal(new Float32Array(4 * dim));
    const b = rng.fillNormal(new Float32Array(6 * dim));
    const d = distanceMatrix(a, b, dim);
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 6; j++) {
        let s = 0;
        for (let k = 0; k < dim; k++) s += (a[i * dim + k]! - b[j * dim + k]!) ** 2;
        close(d[i * 6 + j]!, Math.sqrt(s), 1e-9);
      }
    assert.throws(() => distanceMatrix(a, b.subarray(1), dim), /gallery features have 29/);
    assert.throws(() => distanceMatrix(a, b, 0), UsageError);
  });
});
