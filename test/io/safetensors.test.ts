// Reading a safetensors file written by the reference implementation (Python's `safetensors`
// library, scripts/safetensors-fixture.py): every tensor comes back with the dtype, shape and
// values the script wrote (listed by the script in python.json), BF16 included.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encodeSafetensors, decodeSafetensors, readSafetensors } from '../../src/io/safetensors.js';
import { DataError } from '../../src/util/errors.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'safetensors');
const file = join(dir, 'python.safetensors');

interface Expected {
  metadata: Record<string, string>;
  tensors: Record<
    string,
    { dtype: string; shape: number[]; values: (number | string | boolean)[] }
  >;
}
const expected = JSON.parse(readFileSync(join(dir, 'python.json'), 'utf8')) as Expected;

/** numpy dtype name → the dtype the reader returns (bfloat16 is widened to float32). */
const DTYPE: Record<string, string> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  bfloat16: 'float32',
  int64: 'int64',
  int32: 'int32',
  uint8: 'uint8',
  bool: 'bool',
};

/** A float as python.json writes it: a number, or 'inf', '-inf', 'nan'. */
function float(v: number | string | boolean): number {
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  if (v === 'nan') return NaN;
  return v as number;
}

/** IEEE half-precision bits to a number, written out from the format's definition. */
function half(bits: number): number {
  const sign = bits >> 15 ? -1 : 1;
  const exponent = (bits >> 10) & 31;
  const mantissa = bits & 1023;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

describe('safetensors written by Python', () => {
  // Read in each test, so that a reader that throws fails the tests rather than the suite.
  const read = () => readSafetensors(file);

  test('every tensor, with its shape and metadata', () => {
    const { tensors, metadata } = read();
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected.tensors).sort());
    assert.deepEqual(metadata, expected.metadata);
    for (const [name, e] of Object.entries(expected.tensors)) {
      const t = tensors.get(name)!;
      assert.equal(t.dtype, DTYPE[e.dtype], name);
      assert.deepEqual(t.dims, e.shape, name);
      assert.equal(t.data.length, e.values.length, name);
    }
  });

  test('float32, float64, float16 and bfloat16 values are exactly the ones written', () => {
    const { tensors } = read();
    const floats = Object.entries(expected.tensors).filter(([, e]) =>
      ['float32', 'float64', 'float16', 'bfloat16'].includes(e.dtype),
    );
    assert.equal(floats.filter(([, e]) => e.dtype === 'bfloat16').length, 2);
    for (const [name, e] of floats) {
      const t = tensors.get(name)!;
      const got = e.dtype === 'float16' ? Array.from(t.data as Uint16Array, half) : [...t.data];
      // Object.is: -0 must stay -0 and NaN must be NaN.
      e.values.forEach((v, i) =>
        assert.ok(Object.is(got[i], float(v)), `${name}[${i}]: ${String(got[i])} vs ${String(v)}`),
      );
    }
  });

  test('int64 (full range), int32, uint8 and bool values are exactly the ones written', () => {
    const { tensors } = read();
    for (const [name, e] of Object.entries(expected.tensors)) {
      const t = tensors.get(name)!;
      if (e.dtype === 'int64') {
        assert.deepEqual(
          [...(t.data as BigInt64Array)],
          e.values.map((v) => BigInt(v)),
          name,
        );
      } else if (e.dtype === 'bool') {
        assert.deepEqual([...(t.data as Uint8Array)], e.values.map(Number), name);
      } else if (e.dtype === 'int32' || e.dtype === 'uint8') {
        assert.deepEqual([...(t.data as Int32Array)], e.values.map(Number), name);
      }
    }
    assert.deepEqual([...(tensors.get('index')!.data as BigInt64Array)].slice(3), [
      -(2n ** 63n),
      2n ** 63n - 1n,
    ]);
  });

  test('re-encoding by this project and decoding again gives the same tensors', () => {
    const { tensors, metadata } = read();
    const again = decodeSafetensors(encodeSafetensors(tensors, metadata), 'again');
    assert.deepEqual(again.metadata, metadata);
    for (const [name, t] of tensors) assert.deepEqual(again.tensors.get(name), t, name);
  });

  test('a BF16 tensor whose byte count does not match its shape names the tensor', () => {
    const bytes = new Uint8Array(readFileSync(file));
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
    const bad = header.replace('"shape":[2,2,2]', '"shape":[2,2,3]');
    assert.notEqual(bad, header);
    const out = new Uint8Array(bytes);
    out.set(new TextEncoder().encode(bad), 8);
    assert.throws(
      () => decodeSafetensors(out, 'bf16.safetensors'),
      (err: unknown) =>
        err instanceof DataError &&
        /bf16\.safetensors: tensor 'pos_embed' \[2, 2, 3\] BF16 needs 24 bytes/.test(err.message),
    );
  });
});
