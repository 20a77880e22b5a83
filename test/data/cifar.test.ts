import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CIFAR_RECORD_BYTES, CIFAR10_CLASS_NAMES, loadCifar10 } from '../../src/data/cifar.js';
import { DataError } from '../../src/util/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifar-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * A record whose label is `label` and whose pixel p of channel c is (label * 7 + c * 50 + p) % 256,
 * so every value can be recomputed independently.
 */
function record(label: number): Uint8Array {
  const r = new Uint8Array(CIFAR_RECORD_BYTES);
  r[0] = label;
  for (let c = 0; c < 3; c++)
    for (let p = 0; p < 1024; p++) r[1 + c * 1024 + p] = (label * 7 + c * 50 + p) % 256;
  return r;
}

function writeBatch(dir: string, name: string, labels: number[]): void {
  const buf = new Uint8Array(labels.length * CIFAR_RECORD_BYTES);
  labels.forEach((l, i) => {
    buf.set(record(l), i * CIFAR_RECORD_BYTES);
  });
  fs.writeFileSync(path.join(dir, name), buf);
}

function makeFixture(name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (let b = 1; b <= 5; b++) writeBatch(dir, `data_batch_${b}.bin`, [b, (b + 5) % 10]);
  writeBatch(dir, 'test_batch.bin', [9, 0, 4]);
  return dir;
}

describe('CIFAR-10 binary reader', () => {
  const dir = makeFixture('ok');
  fs.writeFileSync(path.join(dir, 'batches.meta.txt'), 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n');

  test('train concatenates the 5 batches in order; pixels are CHW bytes / 255', async () => {
    const ds = await loadCifar10(dir, 'train');
    assert.equal(ds.size, 10);
    assert.equal(ds.channels, 3);
    assert.equal(ds.height, 32);
    assert.equal(ds.width, 32);
    assert.deepEqual(Array.from(ds.labels), [1, 6, 2, 7, 3, 8, 4, 9, 5, 0]);
    assert.deepEqual(ds.classNames, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
    for (const [i, c, p] of [
      [0, 0, 0],
      [3, 1, 5],
      [9, 2, 1023],
    ] as const) {
      const label = ds.labels[i]!;
      const expected = ((label * 7 + c * 50 + p) % 256) / 255;
      assert.ok(Math.abs(ds.images[i * 3072 + c * 1024 + p]! - expected) < 1e-7);
    }
  });

  test('test split reads test_batch.bin', async () => {
    const ds = await loadCifar10(dir, 'test');
    assert.deepEqual(Array.from(ds.labels), [9, 0, 4]);
  });

  test('without batches.meta.txt the standard names are used', async () => {
    const d = makeFixture('nometa');
    const ds = await loadCifar10(d, 'test');
    assert.deepEqual(ds.classNames, CIFAR10_CLASS_NAMES);
  });

  test('a wrong file size is a DataError naming the file', async () => {
    const d = makeFixture('short');
    const f = path.join(d, 'test_batch.bin');
    fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 2 * CIFAR_RECORD_BYTES + 100));
    await assert.rejects(
      loadCifar10(d, 'test'),
      (e: unknown) =>
        e instanceof DataError &&
        e.message.startsWith(f) &&
        /6246 bytes.*3073-byte/.test(e.message),
    );
  });

  test('a missing batch or a bad label is a DataError naming the file', async () => {
    const d = makeFixture('missing');
    fs.rmSync(path.join(d, 'data_batch_3.bin'));
    await assert.rejects(loadCifar10(d, 'train'), /data_batch_3\.bin: missing CIFAR-10 batch file/);
    writeBatch(d, 'test_batch.bin', [1, 12]);
    await assert.rejects(loadCifar10(d, 'test'), /test_batch\.bin: record 1 has label 12/);
  });
});
