// ReduceMax and ReduceMin: the gradient goes to the extremum; tied extrema share it
// equally. Axes as an attribute (opset 17) and as an input (opset 18).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

for (const op of ['ReduceMax', 'ReduceMin']) {
  describe(op, () => {
    const cases: [number[] | undefined, number][] = [
      [[-1], 0],
      [[0, 2], 1],
      [[-2], 1],
      [undefined, 0],
      [undefined, 1],
    ];
    for (const [axes, keepdims] of cases) {
      test(`axes ${axes ? `[${axes}]` : 'none (all)'}, keepdims ${keepdims}`, async () => {
        await checkGradients({
          inputs: { x: { dims: [2, 3, 4] } },
          build: (b, v) => b.op1(op, [v.x!], { axes, keepdims }),
        });
      });
    }
    test('opset 18: axes as an input, and noop_with_empty_axes', async () => {
      await checkGradients({
        opset: 18,
        inputs: { x: { dims: [2, 3, 4] } },
        build: (b, v) => b.op1(op, [v.x!, b.ints([-1, 0])], { keepdims: 0 }),
      });
      await checkGradients({
        opset: 18,
        inputs: { x: { dims: [2, 3] } },
        build: (b, v) => b.op1(op, [v.x!], { noop_with_empty_axes: 1 }),
      });
    });
  });
}

test('exact ties: ReduceMin over the last axis splits dy equally among tied minima', async () => {
  const { grads } = await exactGradients({
    inputs: { x: { dims: [3, 3], values: [1, 1, 3, 0, 0, 0, 5, 2, 4] } },
    build: (b, v) => b.op1('ReduceMin', [v.x!], { axes: [-1], keepdims: 1 }),
    weights: [2, 3, 7],
  });
  // Row 0: two minima share 2; row 1: three share 3; row 2: one minimum takes 7.
  assert.deepEqual(grads.x, [1, 1, 0, 1, 1, 1, 0, 7, 0]);
});

test('exact ties: ReduceMax over axis 0 with keepdims 0', async () => {
  const { grads } = await exactGradients({
    inputs: { x: { dims: [4, 2], values: [2, -1, 2, -1, 1, -1, 2, -3] } },
    build: (b, v) => b.op1('ReduceMax', [v.x!], { axes: [0], keepdims: 0 }),
    weights: [3, 4],
  });
  // Column 0: max 2 at three rows (3/3 each); column 1: max -1 at three rows (4/3 each).
  assert.deepEqual(grads.x, [1, 4 / 3, 1, 4 / 3, 0, 4 / 3, 1, 0]);
});
