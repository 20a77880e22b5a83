// Sum and Mean (variadic, broadcasting). Mean runs in float32: ONNX Runtime's CPU build has
// no double Mean kernel (session creation fails), so its checks use eps 1e-2, rtol 2e-2.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

describe('Sum (float64)', () => {
  test('binary broadcast and variadic [2,1,4] + [3,1] + [2,1,1,1]', async () => {
    await checkGradients({
      inputs: { a: { dims: [2, 3] }, b: { dims: [3] } },
      build: (b, v) => b.op1('Sum', [v.a!, v.b!]),
    });
    await checkGradients({
      inputs: { a: { dims: [2, 1, 4] }, b: { dims: [3, 1] }, c: { dims: [2, 1, 1, 1] } },
      build: (b, v) => b.op1('Sum', [v.a!, v.b!, v.c!]),
    });
  });
  test('exact: a broadcast scalar collects every element of dy', async () => {
    const { grads } = await exactGradients({
      inputs: { a: { dims: [2], values: [1, 2] }, s: { dims: [], values: [7] } },
      build: (b, v) => b.op1('Sum', [v.a!, v.s!, v.a!]),
      weights: [3, 5],
    });
    assert.deepEqual(grads.a, [6, 10]);
    assert.deepEqual(grads.s, [8]);
  });
});

describe('Mean (float32)', () => {
  test('binary broadcast and variadic with broadcasting', async () => {
    await checkGradients({
      dtype: 'float32',
      inputs: { a: { dims: [2, 3] }, b: { dims: [3] } },
      build: (b, v) => b.op1('Mean', [v.a!, v.b!]),
    });
    await checkGradients({
      dtype: 'float32',
      inputs: { a: { dims: [2, 1, 4] }, b: { dims: [3, 1] }, c: { dims: [] } },
      build: (b, v) => b.op1('Mean', [v.a!, v.b!, v.c!]),
    });
  });
  test('exact: Mean(a [2], b [2], s []) gives dy/3 to each, summed over s', async () => {
    const { grads } = await exactGradients({
      inputs: {
        a: { dims: [2], values: [1, 2], dtype: 'float32' },
        b: { dims: [2], values: [3, 4], dtype: 'float32' },
        s: { dims: [], values: [5], dtype: 'float32' },
      },
      build: (b, v) => b.op1('Mean', [v.a!, v.b!, v.s!]),
      weights: [3, 6],
    });
    assert.deepEqual(grads.a, [1, 2]);
    assert.deepEqual(grads.b, [1, 2]);
    assert.deepEqual(grads.s, [3]);
  });
});
