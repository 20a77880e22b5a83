// Tile: dy folded into [r, d] per axis and summed over the tiles.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkGradients } from '../grad-check.js';
import { backwardOps, checkDynamic, weightedGrad } from './shape-check.js';

describe('Tile gradient', () => {
  test('hand-worked: tile([a, b], 3) gives da = w0 + w2 + w4, db = w1 + w3 + w5', async () => {
    const g = await weightedGrad({
      inputs: { x: { dims: [2], values: [5, 7] } },
      build: (b, v) => b.op1('Tile', [v.x!, b.ints([3])]),
      weights: [1, 2, 3, 4, 5, 6],
    });
    assert.deepEqual(g.x, [9, 12]);
  });

  test('repeats on one, two and no axes', async () => {
    for (const reps of [
      [2, 1],
      [3, 2],
      [1, 1],
    ]) {
      await checkGradients({
        inputs: { x: { dims: [2, 3] } },
        build: (b, v) => b.op1('Tile', [v.x!, b.ints(reps)]),
      });
    }
    // Repeats of 1 add no backward node; otherwise one Reshape and one ReduceSum.
    const plain = backwardOps((b) => b.input('x', 'float32', [2, 3]), ['x']).ops;
    const tiled = (reps: number[]) =>
      backwardOps((b) => b.op1('Tile', [b.input('x', 'float32', [2, 3]), b.ints(reps)]), ['x']).ops;
    assert.deepEqual(tiled([1, 1]), plain);
    assert.equal(tiled([2, 3]).length, plain.length + 2);
  });

  test('rank 3 with a symbolic dim and repeats fed at run time', async () => {
    await checkDynamic({
      inputs: {
        x: { declared: ['N', 2, 'M'], dims: [2, 2, 3] },
        r: { declared: [3], dims: [3], values: [2, 3, 1], dtype: 'int64', constant: true },
      },
      build: (b, v) => b.op1('Tile', [v.x!, v.r!]),
    });
  });
});
