// Gather and GatherElements: scatter-adds, so repeated indices accumulate.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { checkGradients } from '../grad-check.js';
import { checkDynamic, weightedGrad } from './shape-check.js';

const idx = (dims: number[], values: number[], dtype: 'int64' | 'int32' = 'int64') =>
  makeTensor(dtype, dims, values);

describe('Gather gradient', () => {
  test('hand-worked: repeated and negative indices add up', async () => {
    const g = await weightedGrad({
      inputs: { x: { dims: [4], values: [1, 2, 3, 4] } },
      build: (b, v) => b.gather(v.x!, b.constant(idx([4], [0, 0, 3, -1])), 0),
      weights: [1, 10, 100, 1000],
    });
    assert.deepEqual(g.x, [11, 0, 0, 1100]);
  });

  test('rank-3 data, 2-D indices, axes 1, 2 and -1', async () => {
    for (const axis of [1, 2, -1]) {
      await checkGradients({
        inputs: { x: { dims: [2, 3, 4] } },
        build: (b, v) => b.gather(v.x!, b.constant(idx([2, 2], [0, 2, -1, 0])), axis),
      });
    }
  });

  test('scalar index on axis 1 (class-token pooling), int32 indices, float32', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3, 4] } },
      build: (b, v) => b.gather(v.x!, b.constant(idx([], [0])), 1),
    });
    await checkGradients({
      inputs: { x: { dims: [3, 2] } },
      build: (b, v) => b.gather(v.x!, b.constant(idx([3], [2, 2, 0], 'int32')), 0),
    });
    await checkGradients({
      dtype: 'float32',
      inputs: { x: { dims: [3, 4] } },
      build: (b, v) => b.gather(v.x!, b.constant(idx([3], [1, 1, -4])), 1),
    });
  });

  test('symbolic data dims and indices fed at run time', async () => {
    for (const axis of [0, 1]) {
      await checkDynamic({
        inputs: {
          x: { declared: ['N', 'M'], dims: [3, 4] },
          i: { declared: ['K'], dims: [4], values: [2, -1, 2, 0], dtype: 'int64', constant: true },
        },
        build: (b, v) => b.gather(v.x!, v.i!, axis),
      });
    }
  });
});

describe('GatherElements gradient', () => {
  test('hand-worked: y[i, j] = x[i, idx[i, j]] scatter-adds back along axis 1', async () => {
    const g = await weightedGrad({
      inputs: { x: { dims: [2, 3], values: [1, 2, 3, 4, 5, 6] } },
      build: (b, v) =>
        b.op1('GatherElements', [v.x!, b.constant(idx([2, 2], [2, 2, 0, -1]))], { axis: 1 }),
      weights: [1, 10, 100, 1000],
    });
    assert.deepEqual(g.x, [0, 0, 11, 100, 0, 1000]);
  });

  test('axes 0 and -1 with repeated indices', async () => {
    await checkGradients({
      inputs: { x: { dims: [3, 4] } },
      build: (b, v) =>
        b.op1('GatherElements', [v.x!, b.constant(idx([2, 4], [0, 2, 2, 1, 0, 0, -1, 1]))], {
          axis: 0,
        }),
    });
    await checkGradients({
      inputs: { x: { dims: [2, 2, 3] } },
      build: (b, v) =>
        b.op1(
          'GatherElements',
          [v.x!, b.constant(idx([2, 2, 4], [0, 1, 2, 2, 1, 1, 0, -1, 2, 0, 0, 0, 1, 2, 1, 1]))],
          { axis: -1 },
        ),
    });
  });
});
