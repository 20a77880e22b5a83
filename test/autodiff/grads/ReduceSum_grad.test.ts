// ReduceSum (axes as an input from opset 13): axes and negative axes, keepdims 0 and 1,
// no axes (reduce all), an empty axes tensor, and noop_with_empty_axes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

const cases: [string, number[] | null, number, number?][] = [
  ['axes [1], keepdims 1', [1], 1],
  ['axes [-1], keepdims 0', [-1], 0],
  ['axes [-3, -1], keepdims 1', [-3, -1], 1],
  ['axes [2, 0], keepdims 0', [2, 0], 0],
  ['no axes input, keepdims 0 (all)', null, 0],
  ['no axes input, keepdims 1 (all)', null, 1],
  ['empty axes tensor, keepdims 0 (all)', [], 0],
  ['no axes input, noop_with_empty_axes 1 (identity)', null, 0, 1],
  ['empty axes tensor, noop_with_empty_axes 1 (identity)', [], 1, 1],
];
for (const [name, axes, keepdims, noop] of cases) {
  test(name, async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3, 4] } },
      build: (b, v) =>
        b.op1('ReduceSum', axes ? [v.x!, b.ints(axes)] : [v.x!], {
          keepdims,
          noop_with_empty_axes: noop,
        }),
    });
  });
}

test('exact: row sums of a [2,3] weighted [1, 2] spread each weight over its row', async () => {
  const { grads } = await exactGradients({
    inputs: { x: { dims: [2, 3], values: [1, 2, 3, 4, 5, 6] } },
    build: (b, v) => b.op1('ReduceSum', [v.x!, b.ints([-1])], { keepdims: 0 }),
    weights: [1, 2],
  });
  assert.deepEqual(grads.x, [1, 1, 1, 2, 2, 2]);
});

test('exact, opset 12 (axes an attribute): sums over axes [0, -1] of a [2,2,2]', async () => {
  const { grads } = await exactGradients({
    opset: 12,
    inputs: { x: { dims: [2, 2, 2], values: [1, 2, 3, 4, 5, 6, 7, 8] } },
    build: (b, v) => b.op1('ReduceSum', [v.x!], { axes: [0, -1], keepdims: 0 }),
    weights: [3, 5],
  });
  assert.deepEqual(grads.x, [3, 3, 5, 5, 3, 3, 5, 5]);
});
