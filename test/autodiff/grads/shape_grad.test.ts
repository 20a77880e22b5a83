// Finite-difference checks of the shape and indexing rules.
import { describe, test } from 'node:test';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { checkGradients } from '../grad-check.js';

describe('shape and indexing', () => {
  test('Reshape, Flatten, Squeeze, Unsqueeze', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3, 4] } },
      build: (b, v) => b.reshape(v.x!, [4, -1]),
    });
    await checkGradients({
      inputs: { x: { dims: [2, 3, 4] } },
      build: (b, v) => b.flatten(v.x!, 2),
    });
    await checkGradients({
      inputs: { x: { dims: [2, 1, 4] } },
      build: (b, v) => b.squeeze(v.x!, [1]),
    });
    await checkGradients({
      inputs: { x: { dims: [2, 4] } },
      build: (b, v) => b.unsqueeze(v.x!, [0, -1]),
    });
  });
  test('Transpose', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3, 4] } },
      build: (b, v) => b.transpose(v.x!, [2, 0, 1]),
    });
  });
  test('Expand', async () => {
    await checkGradients({
      inputs: { x: { dims: [3, 1] } },
      build: (b, v) => b.op1('Expand', [v.x!, b.ints([2, 3, 4])]),
    });
  });
  test('Concat and Split along a middle axis', async () => {
    await checkGradients({
      inputs: { a: { dims: [2, 3, 2] }, c: { dims: [2, 1, 2] } },
      build: (b, v) => b.concat([v.a!, v.c!], 1),
    });
    await checkGradients({
      inputs: { x: { dims: [2, 5, 2] } },
      build: (b, v) => b.op('Split', [v.x!, b.ints([2, 3])], { axis: 1 }, { outputs: 2 }),
    });
    // Only one output used: the other contributes zeros.
    await checkGradients({
      inputs: { x: { dims: [2, 5] } },
      build: (b, v) => b.op('Split', [v.x!, b.ints([2, 3])], { axis: 1 }, { outputs: 2 })[1]!,
    });
  });
  test('Slice with negative starts and ends past the end', async () => {
    await checkGradients({
      inputs: { x: { dims: [4, 5] } },
      build: (b, v) => b.slice(v.x!, [1, -3], [3, 100], [0, 1]),
    });
  });
  test('Gather with repeated and negative indices adds up (axis 0 and 1)', async () => {
    for (const axis of [0, 1]) {
      await checkGradients({
        inputs: { x: { dims: [3, 4] } },
        build: (b, v) =>
          b.gather(v.x!, b.constant(makeTensor('int64', [2, 2], [0, 2, -1, 0]), 'idx'), axis),
      });
    }
  });
});
