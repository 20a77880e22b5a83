// Max and Min, binary and variadic, with broadcasting; ties split equally (exact cases).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

for (const op of ['Max', 'Min']) {
  describe(op, () => {
    test('binary broadcast [2,3] with [3] and with a scalar', async () => {
      await checkGradients({
        inputs: { a: { dims: [2, 3] }, b: { dims: [3] } },
        build: (b, v) => b.op1(op, [v.a!, v.b!]),
      });
      await checkGradients({
        inputs: { a: { dims: [] }, b: { dims: [2, 2] } },
        build: (b, v) => b.op1(op, [v.a!, v.b!]),
      });
    });
    test('variadic: [2,1,4], [3,1], [2,1,1,1] (the third input widens the output)', async () => {
      await checkGradients({
        inputs: { a: { dims: [2, 1, 4] }, b: { dims: [3, 1] }, c: { dims: [2, 1, 1, 1] } },
        build: (b, v) => b.op1(op, [v.a!, v.b!, v.c!]),
      });
    });
    test('single input passes the gradient through', async () => {
      await checkGradients({
        inputs: { a: { dims: [2, 3] } },
        build: (b, v) => b.op1(op, [v.a!]),
      });
    });
  });
}

test('exact ties: Max of three inputs splits dy among the inputs equal to the max', async () => {
  const { grads } = await exactGradients({
    inputs: {
      a: { dims: [3], values: [1, 2, 5] },
      b: { dims: [3], values: [1, 3, 5] },
      c: { dims: [3], values: [0, 3, 5] },
    },
    build: (b, v) => b.op1('Max', [v.a!, v.b!, v.c!]),
    weights: [2, 4, 3],
  });
  assert.deepEqual(grads.a, [1, 0, 1]);
  assert.deepEqual(grads.b, [1, 2, 1]);
  assert.deepEqual(grads.c, [0, 2, 1]);
});

test('exact ties with broadcasting: Min([2, 1], s = 1) sums the shares reaching s', async () => {
  const { grads } = await exactGradients({
    inputs: { a: { dims: [2], values: [2, 1] }, s: { dims: [], values: [1] } },
    build: (b, v) => b.op1('Min', [v.a!, v.s!]),
  });
  // y = [1, 1]: element 0 comes from s alone, element 1 is a tie (1/2 each).
  assert.deepEqual(grads.a, [0, 0.5]);
  assert.deepEqual(grads.s, [1.5]);
});

test('Max(a, a) gives a the full gradient (two halves summed)', async () => {
  const { grads } = await exactGradients({
    inputs: { a: { dims: [2], values: [-1, 4] } },
    build: (b, v) => b.op1('Max', [v.a!, v.a!]),
    weights: [3, 5],
  });
  assert.deepEqual(grads.a, [3, 5]);
});
