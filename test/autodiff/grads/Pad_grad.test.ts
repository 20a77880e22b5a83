// Pad (constant mode): dx = Pad(dy, -pads), d value = Σ dy over the padding.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GradientError } from '../../../src/util/errors.js';
import { GraphBuilder } from '../../../src/onnx/builder.js';
import { checkGradients } from '../grad-check.js';
import { checkDynamic, weightedGrad } from './shape-check.js';

describe('Pad gradient', () => {
  test('hand-worked: pads [1, 2] on [a, b]; the constant gets the padded weights', async () => {
    const g = await weightedGrad({
      inputs: {
        x: { dims: [2], values: [3, 4] },
        c: { dims: [], values: [0.5] },
      },
      build: (b, v) => b.op1('Pad', [v.x!, b.ints([1, 2]), v.c!]),
      weights: [1, 10, 100, 1000, 10000],
    });
    assert.deepEqual(g.x, [10, 100]);
    assert.deepEqual(g.c, [11001]);
  });

  test('positive, zero and negative (cropping) pads on rank 3', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3, 4] } },
      build: (b, v) => b.op1('Pad', [v.x!, b.ints([0, 1, -1, 1, 0, 2])]),
    });
    await checkGradients({
      inputs: { x: { dims: [3, 4] }, c: { dims: [] } },
      build: (b, v) => b.op1('Pad', [v.x!, b.ints([2, -1, -1, 1]), v.c!], { mode: 'constant' }),
    });
  });

  test('pads fed at run time on a symbolic shape', async () => {
    await checkDynamic({
      inputs: {
        x: { declared: ['N', 3], dims: [2, 3] },
        p: { declared: [4], dims: [4], values: [1, -1, 0, 2], dtype: 'int64', constant: true },
      },
      build: (b, v) => b.op1('Pad', [v.x!, v.p!]),
    });
  });

  test('reflect and edge modes raise a GradientError naming the mode', () => {
    for (const mode of ['reflect', 'edge']) {
      const b = new GraphBuilder();
      const x = b.input('x', 'float32', [2, 4]);
      const y = b.op1('Pad', [x, b.ints([0, 1, 0, 1])], { mode }, 'pad_node');
      b.output(b.op1('ReduceSum', [y], { keepdims: 0 }), 'loss');
      assert.throws(
        () => buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] }),
        (e: unknown) =>
          e instanceof GradientError &&
          e.message.includes(`'${mode}'`) &&
          e.message.includes('pad_node'),
      );
    }
  });
});
