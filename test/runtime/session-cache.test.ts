// The session cache: one compiled session per (model bytes, threads, optimisation), leased
// so that a session is never released under a caller, least recently used idle sessions
// released beyond the capacity.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { cloneGraph, type Model } from '../../src/onnx/ir.js';
import { float32 } from '../../src/onnx/tensor.js';
import { SessionCache } from '../../src/runtime/session-cache.js';

/** y = x · w with w a [2, 2] initializer filled with `v`. */
function scaled(v: number): Model {
  const b = new GraphBuilder({ name: `scale-${v}` });
  const x = b.input('x', 'float32', ['N', 2]);
  const w = b.constant(float32([2, 2], [v, 0, 0, v]), 'w');
  b.output(b.matmul(x, w), 'y');
  return b.build().model;
}

const feeds = { x: float32([1, 2], [1, 2]) };

describe('SessionCache', () => {
  test('the same bytes share one session; other weights or threads do not', async () => {
    const cache = new SessionCache(4);
    const a = scaled(2);
    const s1 = await cache.acquire(a, { threads: 1 });
    const copy = { ...a, graph: cloneGraph(a.graph) };
    const s2 = await cache.acquire(copy, { threads: 1 });
    assert.equal(s1, s2);
    assert.deepEqual(cache.stats(), { hits: 1, misses: 1, size: 1 });
    const s3 = await cache.acquire(scaled(3), { threads: 1 });
    const s4 = await cache.acquire(a, { threads: 2 });
    assert.notEqual(s3, s1);
    assert.notEqual(s4, s1);
    assert.deepEqual(cache.stats(), { hits: 1, misses: 3, size: 3 });
    assert.deepEqual(Array.from((await s1.run(feeds)).y!.data as Float32Array), [2, 4]);
    assert.deepEqual(Array.from((await s3.run(feeds)).y!.data as Float32Array), [3, 6]);
    for (const s of [s1, s2, s3, s4]) await cache.give(s);
    await cache.clear();
    assert.equal(cache.stats().size, 0);
  });

  test('idle sessions beyond the capacity are released, least recently used first', async () => {
    const cache = new SessionCache(2);
    const models = [scaled(1), scaled(2), scaled(3)];
    for (const m of models) await cache.with(m, { threads: 1 }, (s) => s.run(feeds));
    assert.equal(cache.stats().size, 2);
    // scaled(1) was the oldest: it is compiled again; scaled(3) is still there.
    await cache.with(models[2]!, { threads: 1 }, () => Promise.resolve(undefined));
    assert.equal(cache.stats().hits, 1);
    await cache.with(models[0]!, { threads: 1 }, () => Promise.resolve(undefined));
    assert.deepEqual(cache.stats(), { hits: 1, misses: 4, size: 2 });
    await cache.clear();
  });

  test('a leased session is never released; it goes once it is given back', async () => {
    const cache = new SessionCache(1);
    const a = await cache.acquire(scaled(1), { threads: 1 });
    const b = await cache.acquire(scaled(2), { threads: 1 });
    assert.equal(cache.stats().size, 2);
    assert.deepEqual(Array.from((await a.run(feeds)).y!.data as Float32Array), [1, 2]);
    await cache.give(a);
    assert.equal(cache.stats().size, 1);
    assert.deepEqual(Array.from((await b.run(feeds)).y!.data as Float32Array), [2, 4]);
    await assert.rejects(cache.give(a), /not leased/);
    await assert.rejects(cache.clear(), /1 session\(s\) still leased/);
    await cache.give(b);
    await cache.clear();
  });

  test('with() gives the session back when the callback throws', async () => {
    const cache = new SessionCache(1);
    await assert.rejects(
      cache.with(scaled(1), { threads: 1 }, () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    await cache.clear(); // would fail if the session were still leased
    assert.throws(() => new SessionCache(0), /capacity/);
  });
});
