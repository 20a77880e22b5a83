// ReduceSumSquare and ReduceL2: axes and negative axes, keepdims 0 and 1, all axes, axes as
// an input at opset 18 (with noop_with_empty_axes), and the zero-norm case of ReduceL2.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

for (const op of ['ReduceSumSquare', 'ReduceL2']) {
  describe(op, () => {
    const cases: [number[] | undefined, number][] = [
      [[-1], 0],
      [[0, 2], 1],
      [[-3, 1], 0],
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
    test('opset 18: axes input [-2]; noop_with_empty_axes (elementwise)', async () => {
      await checkGradients({
        opset: 18,
        inputs: { x: { dims: [2, 3, 4] } },
        build: (b, v) => b.op1(op, [v.x!, b.ints([-2])], { keepdims: 0 }),
      });
      // ONNX Runtime then applies the elementwise part only: x² or |x| (kept from 0).
      await checkGradients({
        opset: 18,
        inputs: { x: { dims: [2, 3], transform: (v) => (v >= 0 ? v + 0.2 : v - 0.2) } },
        build: (b, v) => b.op1(op, [v.x!], { noop_with_empty_axes: 1 }),
      });
    });
  });
}

test('exact: ReduceSumSquare of all of [1, -2, 3] gives 2x', async () => {
  const { grads } = await exactGradients({
    inputs: { x: { dims: [3], values: [1, -2, 3] } },
    build: (b, v) => b.op1('ReduceSumSquare', [v.x!], { keepdims: 0 }),
  });
  assert.deepEqual(grads.x, [2, -4, 6]);
});

test('exact: ReduceL2 rows of [[3, 4], [0, 0]] give x / ‖x‖, and 0 (not NaN) for the zero row', async () => {
  const { grads } = await exactGradients({
    inputs: { x: { dims: [2, 2], values: [3, 4, 0, 0] } },
    build: (b, v) => b.op1('ReduceL2', [v.x!], { axes: [1], keepdims: 0 }),
    weights: [10, 1],
  });
  assert.deepEqual(grads.x, [6, 8, 0, 0]);
});
