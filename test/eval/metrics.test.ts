// Metrics against small cases worked out by hand (in the comments).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classificationMetrics } from '../../src/eval/classification.js';
import { distanceMatrix, evaluateRetrieval } from '../../src/eval/retrieval.js';

const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('classification', () => {
  test('acc@1, acc@5, ties, confusion and per-class accuracy', () => {
    // s0 [2,1,0] y0 right; s1 [0,1,2] y1 predicted 2; s2 [1,1,0] y1 ties with class 0, which
    // wins (lower index); s3 [0,0,3] y2 right. acc@1 = 2/4; with 3 classes acc@5 = 1.
    const m = classificationMetrics([2, 1, 0, 0, 1, 2, 1, 1, 0, 0, 0, 3], [0, 1, 1, 2], 3);
    assert.equal(m.acc1, 0.5);
    assert.equal(m.acc5, 1);
    assert.deepEqual(m.confusion, [
      [1, 0, 0],
      [1, 0, 1],
      [0, 0, 1],
    ]);
    assert.deepEqual(m.perClass, [1, 0, 1]);
  });
  test('a label out of range names the sample', () => {
    assert.throws(() => classificationMetrics([1, 2], [2], 2), /label 2 of sample 0/);
  });
});

describe('retrieval (Market-1501 protocol)', () => {
  // Gallery: g0 id1 cam0, g1 id2 cam1, g2 id1 cam1, g3 junk (-1), g4 id1 cam2, g5 id3 cam0.
  const gLabels = [1, 2, 1, -1, 1, 3];
  const gCams = [0, 1, 1, 1, 2, 0];
  const qLabels = [1, 3, 2];
  const qCams = [0, 0, 2];
  const dist = [
    [0.1, 0.2, 0.3, 0.05, 0.5, 0.4],
    [0.6, 0.7, 0.8, 0.9, 0.95, 0.1],
    [0.1, 0.3, 0.2, 0.05, 0.4, 0.5],
  ].flat();

  test('same-camera exclusion, junk removal, skipped query', () => {
    // q0 (id1 cam0): junk g3 and same-camera g0 removed; order g1 ✗, g2 ✓ (1/2), g5 ✗, g4 ✓ (2/4)
    //   -> AP 0.5, first match at rank 2.
    // q1 (id3 cam0): its only match g5 shares camera 0 -> no valid match, skipped.
    // q2 (id2 cam2): g0 ✗, g2 ✗, g1 ✓ (1/3) -> AP 1/3, first match at rank 3.
    const r = evaluateRetrieval({ dist, qLabels, gLabels, qCams, gCams, maxRank: 5 });
    assert.equal(r.validQueries, 2);
    assert.equal(r.skippedQueries, 1);
    close(r.mAP, (0.5 + 1 / 3) / 2);
    assert.deepEqual(r.cmc, [0, 0.5, 1, 1, 1]);
    assert.equal(r.rank1, 0);
  });

  test('without cameras only junk is removed (classes as identities)', () => {
    // q0: g0 ✓ (1/1), g1 ✗, g2 ✓ (2/3), g5 ✗, g4 ✓ (3/5) -> AP (1 + 2/3 + 3/5) / 3.
    // q1: g5 ✓ at rank 1 -> AP 1.  q2: g0 ✗, g2 ✗, g1 ✓ -> AP 1/3.
    const r = evaluateRetrieval({ dist, qLabels, gLabels, maxRank: 5 });
    assert.equal(r.validQueries, 3);
    close(r.mAP, ((1 + 2 / 3 + 3 / 5) / 3 + 1 + 1 / 3) / 3);
    close(r.rank1, 2 / 3);
  });

  test('distance matrix: euclidean and cosine on hand-checked vectors', () => {
    const q = [3, 4];
    const g = [0, 0, 3, 0, -3, -4];
    const e = distanceMatrix(q, g, 2);
    close(e[0]!, 5);
    close(e[1]!, 4);
    close(e[2]!, 10);
    const c = distanceMatrix(q, g.slice(2), 2, { metric: 'cosine' });
    close(c[0]!, 1 - 3 / 5);
    close(c[1]!, 2);
  });
});
