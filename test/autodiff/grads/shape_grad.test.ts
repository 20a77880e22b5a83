// Finite-difference checks of the shape and indexing rules.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { checkGradients } from '../grad-check.js';
import { backwardOps, checkDynamic, weightedGrad } from './shape-check.js';

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

describe('shape and indexing: more attributes and run-time shapes', () => {
  test('Transpose without perm reverses the axes', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3, 4] } },
      build: (b, v) => b.op1('Transpose', [v.x!]),
    });
  });

  test('Expand to a higher rank, and to a shape that is partly 1', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 1, 3] } },
      build: (b, v) => b.op1('Expand', [v.x!, b.ints([2, 1, 4, 1])]),
    });
    // The engine's broadcast undoing gives dx[i] = Σ_j w[j, i].
    const g = await weightedGrad({
      inputs: { x: { dims: [1, 2], values: [1, 2] } },
      build: (b, v) => b.op1('Expand', [v.x!, b.ints([3, 1])]),
      weights: [1, 2, 3, 4, 5, 6],
    });
    assert.deepEqual(g.x, [9, 12]);
  });

  test('Concat: hand-worked slices of dy, a non-differentiated middle input', async () => {
    const g = await weightedGrad({
      inputs: {
        a: { dims: [2, 1], values: [1, 2] },
        k: { dims: [2, 1], values: [0, 0], constant: true },
        c: { dims: [2, 2], values: [3, 4, 5, 6] },
      },
      build: (b, v) => b.concat([v.a!, v.k!, v.c!], -1),
      weights: [1, 2, 3, 4, 5, 6, 7, 8],
    });
    assert.deepEqual(g.a, [1, 5]);
    assert.deepEqual(g.c, [3, 4, 7, 8]);
  });

  test('Concat with sizes known only at run time', async () => {
    const grad = await checkDynamic({
      inputs: {
        a: { declared: ['N', 2], dims: [3, 2] },
        c: { declared: [2, 2], dims: [2, 2] },
        d: { declared: ['M', 2], dims: [1, 2] },
      },
      build: (b, v) => b.concat([v.a!, v.c!, v.d!], 0),
    });
    assert.ok(grad.model.graph.nodes.some((n) => n.opType === 'Shape'));
  });

  test('Reshape, Flatten, Squeeze and Unsqueeze on a symbolic batch', async () => {
    const x = { declared: ['N', 2, 3], dims: [2, 2, 3] };
    await checkDynamic({ inputs: { x }, build: (b, v) => b.reshape(v.x!, [-1, 3]) });
    await checkDynamic({ inputs: { x }, build: (b, v) => b.flatten(v.x!, 0) });
    await checkDynamic({ inputs: { x }, build: (b, v) => b.unsqueeze(v.x!, [1, -1]) });
    await checkDynamic({
      inputs: { x: { declared: ['N', 1, 3], dims: [2, 1, 3] } },
      build: (b, v) => b.squeeze(v.x!, [-2]),
    });
  });

  test('a static Reshape adds exactly one backward Reshape (a constant target, no Shape)', () => {
    const plain = backwardOps((b) => b.input('x', 'float32', [2, 6]), ['x']).ops;
    const { ops } = backwardOps((b) => b.reshape(b.input('x', 'float32', [2, 6]), [3, 4]), ['x']);
    assert.deepEqual([...ops].sort(), [...plain, 'Reshape'].sort());
  });

  test('Split: unused outputs contribute zeros, also on a symbolic shape', async () => {
    const g = await weightedGrad({
      inputs: { x: { dims: [5], values: [1, 2, 3, 4, 5] } },
      build: (b, v) => b.op('Split', [v.x!, b.ints([2, 3])], { axis: 0 }, { outputs: 2 })[1]!,
      weights: [7, 8, 9],
    });
    assert.deepEqual(g.x, [0, 0, 7, 8, 9]);
    await checkDynamic({
      inputs: { x: { declared: ['N', 4], dims: [3, 4] } },
      build: (b, v) => b.op('Split', [v.x!], { axis: -1 }, { outputs: 2 })[0]!,
    });
  });
});
