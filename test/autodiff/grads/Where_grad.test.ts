// Where: x gets dy where the condition holds, y elsewhere; the condition gets nothing.
// Broadcasting of all three operands.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

test('condition from the data, x [2,3] and y [3]', async () => {
  await checkGradients({
    inputs: { a: { dims: [2, 3] }, c: { dims: [3] } },
    build: (b, v) => b.op1('Where', [b.op1('Greater', [v.a!, b.scalar(0, 'float64')]), v.a!, v.c!]),
  });
});

test('broadcast condition [2,1,1], x [3,1], y [4]', async () => {
  await checkGradients({
    inputs: {
      cond: { dims: [2, 1, 1], dtype: 'bool', values: [1, 0], constant: true },
      x: { dims: [3, 1] },
      y: { dims: [4] },
    },
    build: (b, v) => b.op1('Where', [v.cond!, v.x!, v.y!]),
  });
});

test('exact: cond [T, F, T], x [3], y scalar', async () => {
  const { grads } = await exactGradients({
    inputs: {
      cond: { dims: [3], dtype: 'bool', values: [1, 0, 1], constant: true },
      x: { dims: [3], values: [1, 2, 3] },
      y: { dims: [], values: [5] },
    },
    build: (b, v) => b.op1('Where', [v.cond!, v.x!, v.y!]),
    weights: [2, 3, 4],
  });
  assert.deepEqual(grads.x, [2, 0, 4]);
  assert.deepEqual(grads.y, [3]);
});
