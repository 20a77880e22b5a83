import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { epochBatches, pkBatches, queryGallerySplit } from '../../src/data/samplers.js';
import { UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const flat = (bs: Int32Array[]) => bs.flatMap((b) => Array.from(b));

describe('epochBatches', () => {
  test('every index exactly once, batch sizes, last batch shorter', () => {
    const bs = epochBatches(103, 10, new Rng(1));
    assert.equal(bs.length, 11);
    assert.ok(bs.slice(0, 10).every((b) => b.length === 10));
    assert.equal(bs[10]!.length, 3);
    assert.deepEqual(
      flat(bs).sort((a, b) => a - b),
      Array.from({ length: 103 }, (_, i) => i),
    );
    assert.notDeepEqual(
      flat(bs),
      Array.from({ length: 103 }, (_, i) => i),
      'shuffled',
    );
  });

  test('dropLast drops the short batch; same seed same order, another seed another order', () => {
    const bs = epochBatches(103, 10, new Rng(1), { dropLast: true });
    assert.equal(bs.length, 10);
    assert.equal(new Set(flat(bs)).size, 100);
    assert.deepEqual(epochBatches(50, 8, new Rng(9)), epochBatches(50, 8, new Rng(9)));
    assert.notDeepEqual(
      flat(epochBatches(50, 8, new Rng(9))),
      flat(epochBatches(50, 8, new Rng(10))),
    );
  });

  test('bad sizes are UsageErrors', () => {
    assert.throws(() => epochBatches(10, 0, new Rng(0)), UsageError);
    assert.throws(() => epochBatches(-1, 2, new Rng(0)), UsageError);
  });
});

describe('pkBatches', () => {
  // ids 0..9: id k has k + 1 images (so ids 0..2 have fewer than K = 4); plus two unlabeled.
  const labels: number[] = [];
  for (let k = 0; k < 10; k++) for (let j = 0; j <= k; j++) labels.push(k);
  labels.push(-1, -1);

  test('each batch holds exactly P distinct ids × K images of each', () => {
    const P = 3;
    const K = 4;
    const bs = pkBatches(labels, P, K, new Rng(5));
    assert.ok(bs.length > 0);
    for (const b of bs) {
      assert.equal(b.length, P * K);
      const ids = Array.from(b, (i) => labels[i]!);
      for (let j = 0; j < P; j++) {
        const block = ids.slice(j * K, (j + 1) * K);
        assert.ok(
          block.every((id) => id === block[0]),
          'identity-major blocks',
        );
      }
      const distinct = new Set(ids);
      assert.equal(distinct.size, P);
      for (const id of distinct) {
        assert.ok(id >= 0);
        assert.equal(ids.filter((v) => v === id).length, K);
      }
    }
  });

  test('ids with at least K images never repeat an index in an epoch; chunk count per id is floor(n/K)', () => {
    const bs = pkBatches(labels, 2, 4, new Rng(6));
    const seen = new Map<number, number>();
    for (const i of flat(bs)) seen.set(i, (seen.get(i) ?? 0) + 1);
    for (const [i, c] of seen)
      if (labels[i]! >= 3) assert.equal(c, 1, `index ${i} used ${c} times`);
    // Total chunks: ids 0..2 one each (drawn with replacement), id k ≥ 3 floor((k+1)/4).
    // Batches are drawn while at least P = 2 ids have chunks, so the chunks left over all
    // belong to one id, which has at most floor(10/4) = 2.
    let chunks = 3;
    for (let k = 3; k < 10; k++) chunks += Math.floor((k + 1) / 4);
    const used = bs.length * 2;
    assert.ok(used >= chunks - 2 && used <= chunks, `${used} of ${chunks} chunks used`);
    for (let seed = 0; seed < 20; seed++) {
      const n = pkBatches(labels, 2, 4, new Rng(seed)).length * 2;
      assert.ok(n >= chunks - 2 && n <= chunks);
    }
  });

  test('same seed gives the same batches; too few ids is a UsageError', () => {
    assert.deepEqual(pkBatches(labels, 4, 2, new Rng(1)), pkBatches(labels, 4, 2, new Rng(1)));
    assert.notDeepEqual(
      flat(pkBatches(labels, 4, 2, new Rng(1))),
      flat(pkBatches(labels, 4, 2, new Rng(2))),
    );
    assert.throws(() => pkBatches([0, 0, 1], 3, 2, new Rng(0)), UsageError);
  });
});

describe('queryGallerySplit', () => {
  const labels = Int32Array.from({ length: 60 }, (_, i) => i % 4); // 15 per class

  test('q queries per class, the rest gallery, disjoint and covering, ascending', () => {
    const { query, gallery } = queryGallerySplit(labels, 3, new Rng(2));
    assert.equal(query.length, 12);
    assert.equal(gallery.length, 48);
    for (let c = 0; c < 4; c++)
      assert.equal(Array.from(query).filter((i) => labels[i] === c).length, 3);
    assert.deepEqual(
      [...query, ...gallery].sort((a, b) => a - b),
      Array.from({ length: 60 }, (_, i) => i),
    );
    assert.deepEqual(
      Array.from(query),
      Array.from(query).sort((a, b) => a - b),
    );
    assert.deepEqual(queryGallerySplit(labels, 3, new Rng(2)), { query, gallery });
  });

  test('a class with no image left for the gallery is a UsageError naming it', () => {
    assert.throws(
      () => queryGallerySplit([0, 0, 0, 1, 1], 2, new Rng(0)),
      (e: unknown) => e instanceof UsageError && /class 1 has 2 samples/.test(e.message),
    );
  });
});
