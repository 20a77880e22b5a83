import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkDataset,
  concatDatasets,
  gatherBatch,
  type ImageDataset,
  subset,
} from '../../src/data/dataset.js';
import { DataError, UsageError } from '../../src/util/errors.js';

/** n images of 1×1×2 where image i holds [i, i + 0.5]; label i % 3; camera i % 2. */
function toy(n: number, name = 'toy'): ImageDataset {
  const images = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    images[2 * i] = i;
    images[2 * i + 1] = i + 0.5;
  }
  return {
    name,
    size: n,
    channels: 1,
    height: 1,
    width: 2,
    numClasses: 3,
    images,
    labels: Int32Array.from({ length: n }, (_, i) => i % 3),
    cameras: Int32Array.from({ length: n }, (_, i) => i % 2),
    files: Array.from({ length: n }, (_, i) => `f${i}.png`),
  };
}

describe('dataset helpers', () => {
  test('subset copies images, labels, cameras and files in index order', () => {
    const s = subset(toy(5), [4, 1, 1]);
    checkDataset(s);
    assert.equal(s.size, 3);
    assert.deepEqual(Array.from(s.images), [4, 4.5, 1, 1.5, 1, 1.5]);
    assert.deepEqual(Array.from(s.labels), [1, 1, 1]);
    assert.deepEqual(Array.from(s.cameras!), [0, 1, 1]);
    assert.deepEqual(s.files, ['f4.png', 'f1.png', 'f1.png']);
  });

  test('gatherBatch returns x and y of the indices', () => {
    const { x, y } = gatherBatch(toy(4), Int32Array.from([2, 0]));
    assert.deepEqual(Array.from(x), [2, 2.5, 0, 0.5]);
    assert.deepEqual(Array.from(y), [2, 0]);
  });

  test('out-of-range indices are UsageErrors naming the position', () => {
    assert.throws(
      () => gatherBatch(toy(4), [0, 4]),
      (e: unknown) => e instanceof UsageError && /index 4 at position 1/.test(e.message),
    );
    assert.throws(() => subset(toy(4), [-1]), UsageError);
  });

  test('concatDatasets appends b after a', () => {
    const a = toy(2, 'a');
    const b = { ...toy(3, 'b'), numClasses: 5, cameras: undefined };
    const c = concatDatasets(a, b);
    checkDataset(c);
    assert.equal(c.name, 'a+b');
    assert.equal(c.size, 5);
    assert.equal(c.numClasses, 5);
    assert.deepEqual(Array.from(c.images), [0, 0.5, 1, 1.5, 0, 0.5, 1, 1.5, 2, 2.5]);
    assert.deepEqual(Array.from(c.labels), [0, 1, 0, 1, 2]);
    assert.equal(c.cameras, undefined);
    assert.deepEqual(c.files, ['f0.png', 'f1.png', 'f0.png', 'f1.png', 'f2.png']);
  });

  test('concatDatasets rejects different image shapes', () => {
    const b = { ...toy(1, 'b'), width: 1, height: 2 };
    assert.throws(
      () => concatDatasets(toy(1, 'a'), b),
      (e: unknown) => e instanceof DataError && /a \(1×1×2\) and b \(1×2×1\)/.test(e.message),
    );
  });

  test('checkDataset catches inconsistent arrays', () => {
    assert.throws(
      () => checkDataset({ ...toy(3), labels: new Int32Array(2) }),
      /2 labels for 3 images/,
    );
  });
});
