// Finite-difference checks of the unary, softmax, reduction and selection rules.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GraphBuilder } from '../../../src/onnx/builder.js';
import { float32 } from '../../../src/onnx/tensor.js';
import { Session } from '../../../src/runtime/session.js';
import { awayFromZero, checkGradients, positive } from '../grad-check.js';

describe('unary', () => {
  const cases: [string, ((v: number) => number) | undefined][] = [
    ['Neg', undefined],
    ['Abs', awayFromZero()],
    ['Sqrt', positive()],
    ['Exp', undefined],
    ['Log', positive()],
    ['Tanh', undefined],
    ['Sigmoid', undefined],
  ];
  for (const [op, transform] of cases) {
    test(op, async () => {
      await checkGradients({
        inputs: { x: { dims: [3, 4], transform } },
        build: (b, v) => b.op1(op, [v.x!]),
      });
    });
  }
  test('Erf (float32: ORT has no double Erf kernel)', async () => {
    await checkGradients({
      dtype: 'float32',
      inputs: { x: { dims: [3, 4] } },
      build: (b, v) => b.op1('Erf', [v.x!]),
    });
  });
  test('Pow with a constant and with a tensor exponent (broadcast)', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3], transform: positive() } },
      build: (b, v) => b.pow(v.x!, 2.5),
    });
    await checkGradients({
      inputs: { x: { dims: [2, 3], transform: positive() }, p: { dims: [3] } },
      build: (b, v) => b.op1('Pow', [v.x!, v.p!]),
    });
  });
  test('Cast float64 -> float32 -> float64 passes the gradient', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3] } },
      build: (b, v) => b.op1('Cast', [b.op1('Cast', [v.x!], { to: 1 })], { to: 11 }),
      rtol: 1e-4,
      atol: 1e-5,
      eps: 1e-3,
    });
  });
});

describe('softmax family', () => {
  for (const op of ['Softmax', 'LogSoftmax']) {
    for (const axis of [-1, 1, 0]) {
      test(`${op} axis ${axis} on [2,3,4]`, async () => {
        await checkGradients({
          inputs: { x: { dims: [2, 3, 4] } },
          build: (b, v) => b.op1(op, [v.x!], { axis }),
        });
      });
    }
  }
});

describe('reductions and selection', () => {
  test('ReduceSum: axes, negative axes, keepdims 0, all', async () => {
    for (const [axes, keepdims] of [
      [[1], 1],
      [[-1, 0], 0],
      [[], 0],
    ] as const) {
      await checkGradients({
        inputs: { x: { dims: [2, 3, 4] } },
        build: (b, v) =>
          b.op1('ReduceSum', axes.length ? [v.x!, b.ints([...axes])] : [v.x!], { keepdims }),
      });
    }
  });
  test('ReduceMax / ReduceMin over distinct values', async () => {
    for (const op of ['ReduceMax', 'ReduceMin']) {
      await checkGradients({
        inputs: { x: { dims: [3, 4] } },
        build: (b, v) => b.op1(op, [v.x!], { axes: [1], keepdims: 0 }),
      });
    }
  });
  test('ReduceMax splits the gradient equally between tied maxima (exact)', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [3]);
    b.output(b.op1('ReduceMax', [x], { keepdims: 0 }), 'loss');
    const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] });
    const s = await Session.create(g.model, { threads: 1 });
    const out = await s.run({ x: float32([3], [1, 3, 3]) });
    assert.deepEqual(Array.from(out[g.gradOutputs.x!]!.data as Float32Array), [0, 0.5, 0.5]);
  });
  test('Max, Min, Sum with broadcasting', async () => {
    for (const op of ['Max', 'Min', 'Sum']) {
      await checkGradients({
        inputs: { a: { dims: [2, 3] }, b: { dims: [3] } },
        build: (b, v) => b.op1(op, [v.a!, v.b!]),
      });
    }
  });
  test('Where routes the gradient by the condition', async () => {
    await checkGradients({
      inputs: { a: { dims: [2, 3] }, c: { dims: [3] } },
      build: (b, v) =>
        b.op1('Where', [b.op1('Greater', [v.a!, b.scalar(0, 'float64')]), v.a!, v.c!]),
    });
  });
});
