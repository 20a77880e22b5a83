// Classification metrics on small cases worked out by hand (in the comments).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  classificationMetrics,
  confusionMatrix,
  perClassAccuracy,
  predictions,
  topKAccuracy,
} from '../../src/eval/classification.js';
import { DataError } from '../../src/util/errors.js';

// 4 samples, 3 classes:
//   s0 [2, 1, 0] label 0: class 0 scores highest            -> rank 0, predicted 0
//   s1 [0, 1, 2] label 0: classes 2 and 1 score higher      -> rank 2, predicted 2
//   s2 [1, 1, 0] label 1: class 0 ties and has a lower index -> rank 1, predicted 0
//   s3 [0, 0, 3] label 2: class 2 scores highest            -> rank 0, predicted 2
const logits = Float32Array.from([2, 1, 0, 0, 1, 2, 1, 1, 0, 0, 0, 3]);
const labels = [0, 0, 1, 2];

describe('classification metrics', () => {
  test('acc@1, acc@2, acc@5 with ties broken towards the lower class index', () => {
    assert.equal(topKAccuracy(logits, labels, 3, 1), 2 / 4); // s0, s3
    assert.equal(topKAccuracy(logits, labels, 3, 2), 3 / 4); // + s2 (rank 1); s1 has rank 2
    assert.equal(topKAccuracy(logits, labels, 3, 3), 1);
    assert.deepEqual(Array.from(predictions(logits, 3)), [0, 2, 0, 2]);
  });

  test('confusion matrix (rows = true class) and per-class accuracy', () => {
    // true 0: s0 -> 0, s1 -> 2; true 1: s2 -> 0; true 2: s3 -> 2.
    const c = confusionMatrix(logits, labels, 3);
    assert.deepEqual(c, [
      [1, 0, 1],
      [1, 0, 0],
      [0, 0, 1],
    ]);
    assert.deepEqual(perClassAccuracy(c), [0.5, 0, 1]);
  });

  test('all metrics in one JSON-able object', () => {
    const m = classificationMetrics(logits, labels, 3);
    assert.equal(m.acc1, 0.5);
    assert.equal(m.acc5, 1); // 3 classes: the top 5 hold every class
    assert.deepEqual(m.perClass, [0.5, 0, 1]);
    assert.deepEqual(m.support, [2, 1, 1]);
    assert.equal(m.count, 4);
    assert.deepEqual(JSON.parse(JSON.stringify(m)), { ...m });
  });

  test('acc@5 among 7 classes: 5th place counts, 6th does not, ties by index', () => {
    // Row 0 descending scores: label 4 is 5th (rank 4) -> hit. Row 1: label 5 is 6th -> miss.
    // Row 2 all equal: ties rank by index, so label 4 is 5th -> hit; row 3 label 5 -> miss.
    const desc = [6, 5, 4, 3, 2, 1, 0];
    const flat = [1, 1, 1, 1, 1, 1, 1];
    const m = classificationMetrics([...desc, ...desc, ...flat, ...flat], [4, 5, 4, 5], 7);
    assert.equal(m.acc5, 0.5);
    assert.equal(m.acc1, 0);
    assert.deepEqual(m.confusion[4], [2, 0, 0, 0, 0, 0, 0]);
  });

  test('an empty class has NaN accuracy, written as null in JSON', () => {
    // Labels 0 and 2 only; class 1 has no sample.
    const m = classificationMetrics([1, 0, 0, 0, 0, 1], [0, 2], 3);
    assert.ok(Number.isNaN(m.perClass[1]));
    assert.deepEqual(m.support, [1, 0, 1]);
    assert.deepEqual((JSON.parse(JSON.stringify(m)) as typeof m).perClass, [1, null, 1]);
  });

  test('bad inputs are DataErrors naming the sample', () => {
    assert.throws(() => classificationMetrics([1, 2], [2], 2), /label 2 of sample 0/);
    assert.throws(() => classificationMetrics([1, 2, 3], [0, 1], 2), /3 values.*need 4/);
    assert.throws(
      () => classificationMetrics([0, 1, Number.NaN, 0], [0, 1], 2),
      (e: unknown) => e instanceof DataError && /class 0 of sample 1 is NaN/.test(e.message),
    );
    assert.throws(() => classificationMetrics([], [], 2), /no samples/);
    assert.throws(() => topKAccuracy(logits, labels, 3, 0), DataError);
  });
});
