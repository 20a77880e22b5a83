import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  encodeIdx,
  type IdxArray,
  isGzip,
  parseIdx,
  readIdx,
  writeIdx,
} from '../../src/data/idx.js';
import { DataError } from '../../src/util/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'idx-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('IDX', () => {
  test('encodes the header by hand: uint8 [2, 3]', () => {
    const bytes = encodeIdx({
      dtype: 'uint8',
      dims: [2, 3],
      data: new Uint8Array([1, 2, 3, 4, 5, 6]),
    });
    assert.deepEqual(Array.from(bytes), [0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]);
  });

  test('int32 elements are big-endian', () => {
    const bytes = encodeIdx({ dtype: 'int32', dims: [1], data: new Int32Array([0x01020304]) });
    assert.deepEqual(Array.from(bytes.subarray(8)), [1, 2, 3, 4]);
  });

  const cases: IdxArray[] = [
    { dtype: 'uint8', dims: [2, 2, 2], data: new Uint8Array([0, 1, 127, 128, 200, 255, 3, 9]) },
    { dtype: 'int8', dims: [4], data: new Int8Array([-128, -1, 0, 127]) },
    { dtype: 'int16', dims: [3], data: new Int16Array([-32768, 258, 32767]) },
    { dtype: 'int32', dims: [2, 1], data: new Int32Array([-123456789, 987654321]) },
    { dtype: 'float32', dims: [3], data: new Float32Array([1.5, -0.25, 3.4e38]) },
    { dtype: 'float64', dims: [2], data: new Float64Array([Math.PI, -1e-300]) },
    { dtype: 'uint8', dims: [0, 28, 28], data: new Uint8Array(0) },
  ];
  for (const c of cases) {
    test(`file round trip, raw and gzipped: ${c.dtype} [${c.dims}]`, async () => {
      for (const name of [`a-${c.dtype}.idx`, `a-${c.dtype}.idx.gz`]) {
        const file = path.join(tmp, name);
        await writeIdx(file, c);
        assert.equal(isGzip(fs.readFileSync(file)), name.endsWith('.gz'));
        const back = await readIdx(file);
        assert.equal(back.dtype, c.dtype);
        assert.deepEqual(back.dims, c.dims);
        assert.deepEqual(Array.from(back.data), Array.from(c.data));
        assert.equal(back.data.constructor, c.data.constructor);
      }
    });
  }

  test('gzip is detected by content, not by name', async () => {
    const file = path.join(tmp, 'no-suffix');
    await writeIdx(
      file,
      { dtype: 'uint8', dims: [2], data: new Uint8Array([7, 8]) },
      { gzip: true },
    );
    assert.ok(isGzip(fs.readFileSync(file)));
    assert.deepEqual(Array.from((await readIdx(file)).data), [7, 8]);
  });

  const good = encodeIdx({ dtype: 'uint8', dims: [2, 3], data: new Uint8Array(6) });
  const bad: [string, Uint8Array, RegExp][] = [
    [
      'truncated payload',
      good.subarray(0, good.length - 1),
      /bad\.idx: IDX payload length mismatch.*\[2, 3\].*need 18 bytes, file has 17/,
    ],
    ['extra trailing bytes', Uint8Array.from([...good, 0]), /need 18 bytes, file has 19/],
    [
      'wrong magic',
      Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]),
      /bad\.idx: not an IDX file \(magic bytes 01 00 08 01/,
    ],
    [
      'unknown dtype code',
      Uint8Array.from([0, 0, 0x0a, 1, 0, 0, 0, 0]),
      /bad\.idx: unknown IDX dtype code 0x0a/,
    ],
    ['truncated header', good.subarray(0, 6), /bad\.idx: truncated IDX header/],
    ['too short', Uint8Array.from([0, 0]), /bad\.idx: too short/],
    ['truncated gzip', gzipSync(good).subarray(0, 15), /bad\.idx: corrupt gzip stream/],
  ];
  for (const [what, bytes, re] of bad) {
    test(`rejects ${what} with a DataError naming the file`, async () => {
      const file = path.join(tmp, 'bad.idx');
      fs.writeFileSync(file, bytes);
      await assert.rejects(
        readIdx(file),
        (e: unknown) => e instanceof DataError && re.test(e.message),
      );
    });
  }

  test('a missing file is a DataError naming it', async () => {
    await assert.rejects(
      readIdx(path.join(tmp, 'nope.idx')),
      (e: unknown) => e instanceof DataError && /nope\.idx/.test(e.message),
    );
  });

  test('encode rejects data that does not fill the dims', () => {
    assert.throws(
      () => encodeIdx({ dtype: 'uint8', dims: [2, 2], data: new Uint8Array(3) }),
      DataError,
    );
  });

  test('parseIdx names the given source in errors', () => {
    assert.throws(
      () => parseIdx(Uint8Array.from([9, 9, 9, 9]), 'my-labels'),
      (e: unknown) => e instanceof DataError && e.message.startsWith('my-labels: not an IDX file'),
    );
  });
});
