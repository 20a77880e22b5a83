// Slice: Pad for unit steps with constant bounds, a scatter of flat positions otherwise.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkGradients } from '../grad-check.js';
import { backwardOps, checkDynamic, weightedGrad } from './shape-check.js';

describe('Slice gradient', () => {
  test('unit steps with constant bounds use one Pad and match finite differences', async () => {
    const { ops } = backwardOps(
      (b) => b.slice(b.input('x', 'float32', [4, 5]), [1], [3], [0]),
      ['x'],
    );
    assert.ok(ops.includes('Pad'));
    assert.ok(!ops.includes('ScatterElements'));
    await checkGradients({
      inputs: { x: { dims: [3, 4, 5] } },
      build: (b, v) => b.slice(v.x!, [-2, 1, 0], [100, -1, 5], [-1, 0, 1]),
    });
  });

  test('steps of 2 and 3 on two axes', async () => {
    await checkGradients({
      inputs: { x: { dims: [5, 7] } },
      build: (b, v) => b.slice(v.x!, [0, 1], [5, 7], [0, 1], [2, 3]),
    });
  });

  test('negative steps (reversal and stride -2)', async () => {
    await checkGradients({
      inputs: { x: { dims: [5, 4] } },
      build: (b, v) => b.slice(v.x!, [-1, 3], [-100, 0], [0, 1], [-2, -1]),
    });
  });

  test('hand-worked: x[1:5:2] of [1..6] puts dy at positions 1 and 3', async () => {
    const g = await weightedGrad({
      inputs: { x: { dims: [6], values: [1, 2, 3, 4, 5, 6] } },
      build: (b, v) => b.slice(v.x!, [1], [5], [0], [2]),
      weights: [10, 100],
    });
    assert.deepEqual(g.x, [0, 10, 0, 100, 0, 0]);
    const rev = await weightedGrad({
      inputs: { x: { dims: [4], values: [1, 2, 3, 4] } },
      build: (b, v) => b.slice(v.x!, [-1], [-100], [0], [-1]),
      weights: [1, 2, 3, 4],
    });
    assert.deepEqual(rev.x, [4, 3, 2, 1]);
  });

  test('bounds known only at run time, on a symbolic batch dim', async () => {
    const grad = await checkDynamic({
      inputs: {
        x: { declared: ['N', 4], dims: [5, 4] },
        s: { declared: [2], dims: [2], values: [1, -1], dtype: 'int64', constant: true },
      },
      build: (b, v) =>
        b.op1('Slice', [v.x!, v.s!, b.ints([4, -5]), b.ints([0, 1]), b.ints([1, -1])]),
    });
    assert.ok(grad.model.graph.nodes.some((n) => n.opType === 'ScatterElements'));
  });

  test('a sliced symbolic axis with constant bounds still differentiates', async () => {
    await checkDynamic({
      inputs: { x: { declared: ['N', 3], dims: [4, 3] } },
      build: (b, v) => b.slice(v.x!, [1], [3], [0]),
    });
  });
});
