// The ONNX Runtime wrapper: feeds are checked in TypeScript before the native call (each
// failure a FeedError naming the input), load failures are ModelErrors naming the
// source, and intermediate values can be fetched as extra outputs.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { FeedError, ModelError } from '../../src/util/errors.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { emptyGraph, type Model, makeModel } from '../../src/onnx/ir.js';
import { float32, int64, makeTensor, type Tensor } from '../../src/onnx/tensor.js';
import { SESSION_FILE_BYTES, Session, withExtraOutputs } from '../../src/runtime/session.js';

/**
 * Inputs a: float32 [N, 3], c: float32 [N, 1], k: int64 [2].
 * Outputs y = relu(a + c) [N, 3] and k2 = k · k.
 */
function model(): { model: Model; sum: string } {
  const b = new GraphBuilder({ name: 'feeds' });
  const a = b.input('a', 'float32', ['N', 3]);
  const c = b.input('c', 'float32', ['N', 1]);
  const k = b.input('k', 'int64', [2]);
  const sum = b.add(a, c);
  b.output(b.relu(sum), 'y');
  b.output(b.mul(k, k), 'k2');
  return { model: b.build().model, sum: sum.name };
}

const good = (): Record<string, Tensor> => ({
  a: float32([2, 3], [1, -2, 3, -4, 5, -6]),
  c: float32([2, 1], [0.5, 1]),
  k: int64([2], [3, -4]),
});

// Counts calls into the native run, to show that bad feeds never get there.
let nativeRuns = 0;
const proto = (
  ort.InferenceSession as unknown as {
    prototype: { run: (...args: unknown[]) => Promise<unknown> };
  }
).prototype;
const originalRun = proto.run;
before(() => {
  proto.run = function (this: unknown, ...args: unknown[]) {
    nativeRuns++;
    return originalRun.apply(this, args);
  };
});
after(() => {
  proto.run = originalRun;
});

describe('Session.run checks feeds before the native call', () => {
  let s: Session;
  before(async () => {
    s = await Session.create(model().model, { threads: 1, source: 'feeds.onnx' });
  });
  after(async () => {
    await s.release();
  });

  test('good feeds run and give the hand-computed outputs', async () => {
    const before = nativeRuns;
    const out = await s.run(good());
    assert.equal(nativeRuns, before + 1);
    // a + c = [1.5, -1.5, 3.5, -3, 6, -5] -> relu.
    assert.deepEqual(Array.from(out.y!.data as Float32Array), [1.5, 0, 3.5, 0, 6, 0]);
    assert.deepEqual(out.y!.dims, [2, 3]);
    assert.deepEqual(Array.from(out.k2!.data as BigInt64Array), [9n, 16n]);
  });

  /** Asserts the feeds are refused with a FeedError matching `re`, without a native run. */
  async function refused(feeds: Record<string, Tensor>, re: RegExp): Promise<void> {
    const before = nativeRuns;
    await assert.rejects(s.run(feeds), (e: unknown) => {
      assert.ok(e instanceof FeedError, `expected a FeedError, got ${String(e)}`);
      assert.match(e.message, /^feeds\.onnx: /);
      assert.match(e.message, re);
      return true;
    });
    assert.equal(nativeRuns, before, 'the native session was not called');
  }

  test('a missing input names it and its expected type', async () => {
    const feeds = good();
    delete feeds.c;
    await refused(feeds, /missing input 'c' \(float32\[N, 1\]\)/);
  });

  test('an unknown input name lists the inputs', async () => {
    await refused({ ...good(), b: float32([1], [0]) }, /unknown input 'b' \(inputs: a, c, k\)/);
  });

  test('a wrong dtype names the input and both dtypes', async () => {
    await refused(
      { ...good(), k: makeTensor('int32', [2], [3, 4]) },
      /input 'k' is int32, expected int64/,
    );
    await refused(
      { ...good(), a: makeTensor('float64', [2, 3]) },
      /input 'a' is float64, expected float32/,
    );
  });

  test('a wrong rank names the input and the expected shape', async () => {
    await refused(
      { ...good(), a: float32([6], [1, 2, 3, 4, 5, 6]) },
      /input 'a' has shape \[6\], expected float32\[N, 3\]/,
    );
  });

  test('a wrong static dim names the input and the axis', async () => {
    await refused(
      { ...good(), a: float32([2, 4]) },
      /input 'a' has shape \[2,4\], expected float32\[N, 3\] \(dim 1\)/,
    );
    await refused({ ...good(), k: int64([3], [1, 2, 3]) }, /input 'k' .*\(dim 0\)/);
  });

  test('one symbolic dim bound to two sizes names both inputs', async () => {
    await refused(
      { ...good(), c: float32([3, 1], [1, 2, 3]) },
      /input 'c' dim 0 \('N'\) is 3 but input 'a' set 'N' = 2/,
    );
  });

  test('data whose length does not match its dims names the input', async () => {
    const bad: Tensor = { dtype: 'float32', dims: [2, 3], data: new Float32Array(5) };
    await refused({ ...good(), a: bad }, /input 'a' has 5 elements for dims \[2,3\]/);
  });

  test('an unknown fetch name lists the outputs', async () => {
    const before = nativeRuns;
    await assert.rejects(
      s.run(good(), ['nope']),
      (e: unknown) =>
        e instanceof FeedError && /no output named 'nope' \(outputs: y, k2\)/.test(e.message),
    );
    assert.equal(nativeRuns, before);
  });

  test('a given output buffer is written in place, run after run', async () => {
    const buf = float32([2, 3], new Float32Array(6).fill(-7));
    const first = await s.run(good(), ['y', 'k2'], { y: buf });
    assert.equal(first.y, buf);
    assert.deepEqual(Array.from(buf.data as Float32Array), [1.5, 0, 3.5, 0, 6, 0]);
    assert.deepEqual(Array.from(first.k2!.data as BigInt64Array), [9n, 16n]);
    await s.run({ ...good(), c: float32([2, 1], [-10, 10]) }, ['y'], { y: buf });
    assert.deepEqual(Array.from(buf.data as Float32Array), [0, 0, 0, 6, 15, 4]);
  });

  test('an output buffer of the wrong shape or for an unfetched output is refused', async () => {
    await assert.rejects(
      s.run(good(), ['k2'], { y: float32([2, 3], new Float32Array(6)) }),
      (e: unknown) => e instanceof FeedError && /buffer is given for 'y'/.test(e.message),
    );
    await assert.rejects(
      s.run(good(), ['y'], { y: float32([3, 3], new Float32Array(9)) }),
      (e: unknown) => e instanceof ModelError && /feeds\.onnx: onnxruntime failed/.test(e.message),
    );
  });

  test('a symbolic batch of another size is accepted', async () => {
    const out = await s.run({
      a: float32([1, 3], [-1, 0, 1]),
      c: float32([1, 1], [0.5]),
      k: int64([2], [0, 1]),
    });
    assert.deepEqual(Array.from(out.y!.data as Float32Array), [0, 0.5, 1.5]);
  });
});

describe('Session.create', () => {
  test('a model ORT rejects at load gives a ModelError with the source name', async () => {
    const g = emptyGraph('broken');
    g.inputs.push({ name: 'x', dtype: 'float32', shape: [2] });
    g.nodes.push({
      name: 'n',
      opType: 'NoSuchOp',
      domain: '',
      inputs: ['x'],
      outputs: ['y'],
      attrs: {},
    });
    g.outputs.push({ name: 'y', dtype: 'float32', shape: [2] });
    await assert.rejects(
      Session.create(makeModel(g), { source: 'broken.onnx', threads: 1 }),
      (e: unknown) =>
        e instanceof ModelError &&
        /^broken\.onnx: onnxruntime cannot load the model: .*NoSuchOp/s.test(e.message),
    );
    // Without a source, the graph's name is used.
    await assert.rejects(
      Session.create(makeModel(g), { threads: 1 }),
      (e: unknown) => e instanceof ModelError && e.message.startsWith('broken: '),
    );
  });

  test('spin: false reaches ONNX Runtime as allow_spinning 0; the default leaves it on', async () => {
    const b = new GraphBuilder({ name: 'relu' });
    b.output(b.op1('Relu', [b.input('x', 'float32', [2])]), 'y');
    const model = b.build().model;
    const statics = ort.InferenceSession as unknown as { create: (...a: unknown[]) => unknown };
    const create = statics.create;
    const options: Record<string, unknown>[] = [];
    statics.create = (...a: unknown[]) => (
      options.push(a[1] as Record<string, unknown>),
      create.apply(statics, a)
    );
    const sessions: Session[] = [];
    try {
      sessions.push(await Session.create(model, { threads: 2, spin: false }));
      sessions.push(await Session.create(model, { threads: 2 }));
    } finally {
      statics.create = create;
    }
    try {
      assert.deepEqual(options[0]!.extra, { session: { intra_op: { allow_spinning: '0' } } });
      assert.equal(options[1]!.extra, undefined);
      // A session that does not spin still computes.
      const y = await sessions[0]!.run({ x: float32([2], [-1, 3]) });
      assert.deepEqual(Array.from(y.y!.data as Float32Array), [0, 3]);
    } finally {
      for (const s of sessions) await s.release();
    }
  });
});

describe('Session.create of a large model', () => {
  const leftovers = () => readdirSync(tmpdir()).filter((f) => f.startsWith('denoiserep-session-'));

  test('goes through a temporary file with external data, runs right, and leaves no file', async () => {
    // A 4,100 x 4,100 float32 weight (64.1 MB) passes SESSION_FILE_BYTES.
    const n = 4100;
    assert.ok(n * n * 4 >= SESSION_FILE_BYTES);
    const w = new Float32Array(n * n);
    for (let i = 0; i < n; i++) w[i * n + ((i * 7) % n)] = i + 1; // y_i = (i + 1) x_{7i mod n}
    const b = new GraphBuilder({ name: 'big' });
    const x = b.input('x', 'float32', [1, n]);
    const wv = b.param('w', [n, n], { kind: 'tensor', tensor: float32([n, n], w) });
    b.output(b.gemm(x, wv, null, { transB: 1 }), 'y');
    const before = leftovers();
    // What ONNX Runtime is handed: a path (a string), not bytes.
    const statics = ort.InferenceSession as unknown as { create: (...a: unknown[]) => unknown };
    const create = statics.create;
    const given: unknown[] = [];
    statics.create = (...a: unknown[]) => (given.push(a[0]), create.apply(statics, a));
    let s: Session;
    try {
      s = await Session.create(b.build().model, { threads: 1 });
    } finally {
      statics.create = create;
    }
    try {
      assert.equal(given.length, 1);
      assert.match(given[0] as string, /denoiserep-session-.*model\.onnx$/);
      assert.deepEqual(leftovers(), before);
      const xs = Float32Array.from({ length: n }, (_, j) => j / 8);
      const y = (await s.run({ x: float32([1, n], xs) })).y!.data as Float32Array;
      for (const i of [0, 1, 5, 4099]) assert.equal(y[i], (i + 1) * xs[(i * 7) % n]!);
    } finally {
      await s.release();
    }
  });

  test('a file ONNX Runtime refuses is still a ModelError naming the source', async () => {
    const n = 4100;
    const g = emptyGraph('broken-big');
    g.inputs.push({ name: 'x', dtype: 'float32', shape: [n] });
    g.initializers.set('w', makeTensor('float32', [n, n], new Float32Array(n * n)));
    g.nodes.push({
      name: 'n',
      opType: 'NoSuchOp',
      domain: '',
      inputs: ['x', 'w'],
      outputs: ['y'],
      attrs: {},
    });
    g.outputs.push({ name: 'y', dtype: 'float32', shape: [n] });
    const before = leftovers();
    await assert.rejects(
      Session.create(makeModel(g), { source: 'big.onnx', threads: 1 }),
      (e: unknown) =>
        e instanceof ModelError &&
        /^big\.onnx: onnxruntime cannot load the model: .*NoSuchOp/s.test(e.message),
    );
    assert.deepEqual(leftovers(), before);
  });
});

describe('withExtraOutputs', () => {
  test('fetches an intermediate value equal to the hand-computed one', async () => {
    const { model: m, sum } = model();
    const extra = withExtraOutputs(m, [sum, 'y']);
    assert.deepEqual(
      extra.graph.outputs.map((o) => o.name),
      ['y', 'k2', sum],
      'an existing output is not repeated',
    );
    assert.equal(extra.graph.outputs[2]!.dtype, 'float32');
    assert.equal(m.graph.outputs.length, 2, 'the original model is unchanged');
    const s = await Session.create(extra, { threads: 1 });
    const out = await s.run(good());
    // The value before the Relu keeps its negative entries.
    assert.deepEqual(Array.from(out[sum]!.data as Float32Array), [1.5, -1.5, 3.5, -3, 6, -5]);
    assert.deepEqual(out[sum]!.dims, [2, 3]);
    await s.release();
  });

  test('an integer intermediate gets its inferred dtype', async () => {
    const b = new GraphBuilder();
    const k = b.input('k', 'int64', [2]);
    const sq = b.mul(k, k);
    b.output(b.add(sq, k), 'out');
    const extra = withExtraOutputs(b.build().model, [sq.name]);
    assert.equal(extra.graph.outputs[1]!.dtype, 'int64');
    const s = await Session.create(extra, { threads: 1 });
    const out = await s.run({ k: int64([2], [3, -2]) });
    assert.deepEqual(Array.from(out[sq.name]!.data as BigInt64Array), [9n, 4n]);
    await s.release();
  });
});
