import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  embeddedFashionMnistDir,
  FMNIST_CLASS_NAMES,
  FMNIST_DEFAULT_PATH,
  loadFashionMnist,
} from '../../src/data/fashion-mnist.js';
import { writeIdx } from '../../src/data/idx.js';
import { DataError } from '../../src/util/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function classCounts(labels: Int32Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const l of labels) counts[l]!++;
  return counts;
}

describe('Fashion-MNIST', () => {
  test('the embedded folder resolves to data/fashion-mnist at the package root', () => {
    const dir = embeddedFashionMnistDir();
    assert.equal(path.basename(dir.replace(/[\\/]$/, '')), 'fashion-mnist');
    assert.ok(fs.existsSync(path.join(dir, '..', '..', 'package.json')));
    assert.ok(fs.existsSync(path.join(dir, 'LICENSE')));
  });

  for (const [split, n] of [
    ['train', 10_000],
    ['test', 2_000],
  ] as const) {
    test(`embedded ${split}: ${n} balanced images in [0, 1]`, async () => {
      const ds = await loadFashionMnist('embedded', split);
      assert.equal(ds.size, n);
      assert.equal(ds.channels, 1);
      assert.equal(ds.height, 28);
      assert.equal(ds.width, 28);
      assert.equal(ds.numClasses, 10);
      assert.deepEqual(ds.classNames, FMNIST_CLASS_NAMES);
      assert.equal(ds.images.length, n * 28 * 28);
      assert.deepEqual(classCounts(ds.labels), new Array(10).fill(n / 10));
      let min = Infinity;
      let max = -Infinity;
      for (const v of ds.images) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      assert.ok(min >= 0 && max <= 1, `range [${min}, ${max}]`);
      // Real images: black background and some saturated pixels.
      assert.equal(min, 0);
      assert.equal(max, 1);
    });
  }

  test('a folder of raw (not gzipped) IDX files loads; pixels are byte / 255', async () => {
    const dir = path.join(tmp, 'raw');
    fs.mkdirSync(dir);
    const px = new Uint8Array(2 * 28 * 28);
    px[0] = 255;
    px[1] = 51;
    px[28 * 28] = 102;
    await writeIdx(path.join(dir, 't10k-images-idx3-ubyte'), {
      dtype: 'uint8',
      dims: [2, 28, 28],
      data: px,
    });
    await writeIdx(path.join(dir, 't10k-labels-idx1-ubyte'), {
      dtype: 'uint8',
      dims: [2],
      data: new Uint8Array([9, 3]),
    });
    const ds = await loadFashionMnist(dir, 'test');
    assert.equal(ds.size, 2);
    assert.deepEqual(Array.from(ds.labels), [9, 3]);
    assert.equal(ds.images[0], 1);
    assert.ok(Math.abs(ds.images[1]! - 0.2) < 1e-7);
    assert.ok(Math.abs(ds.images[28 * 28]! - 0.4) < 1e-7);
  });

  test('label count mismatch and out-of-range labels name the labels file', async () => {
    const dir = path.join(tmp, 'bad');
    fs.mkdirSync(dir);
    await writeIdx(path.join(dir, 'train-images-idx3-ubyte.gz'), {
      dtype: 'uint8',
      dims: [2, 28, 28],
      data: new Uint8Array(2 * 784),
    });
    const labels = path.join(dir, 'train-labels-idx1-ubyte.gz');
    await writeIdx(labels, { dtype: 'uint8', dims: [3], data: new Uint8Array(3) });
    await assert.rejects(
      loadFashionMnist(dir, 'train'),
      (e: unknown) =>
        e instanceof DataError &&
        e.message.includes(labels) &&
        /3 labels for 2 images/.test(e.message),
    );
    await writeIdx(labels, { dtype: 'uint8', dims: [2], data: new Uint8Array([1, 10]) });
    await assert.rejects(
      loadFashionMnist(dir, 'train'),
      (e: unknown) =>
        e instanceof DataError &&
        e.message.includes(labels) &&
        /label 10 at index 1/.test(e.message),
    );
  });

  test('a missing file or folder is a DataError naming it', async () => {
    await assert.rejects(
      loadFashionMnist(path.join(tmp, 'raw'), 'train'),
      /missing Fashion-MNIST file train-images-idx3-ubyte\.gz/,
    );
    await assert.rejects(
      loadFashionMnist(path.join(tmp, 'absent'), 'test'),
      (e: unknown) => e instanceof DataError && /absent/.test(e.message),
    );
  });

  test('the full data set, when installed, has 60,000 / 10,000 images', {
    skip: !fs.existsSync(FMNIST_DEFAULT_PATH),
  }, async () => {
    const ds = await loadFashionMnist(FMNIST_DEFAULT_PATH, 'test');
    assert.equal(ds.size, 10_000);
    assert.deepEqual(classCounts(ds.labels), new Array(10).fill(1000));
  });
});
