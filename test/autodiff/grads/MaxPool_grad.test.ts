// MaxPool gradients: float64 finite differences (ONNX Runtime has double MaxPool and
// ScatterElements kernels), and a hand-worked case where overlapping windows share an
// arg-max so their gradients add up.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GradientError } from '../../../src/errors.js';
import { GraphBuilder } from '../../../src/onnx/builder.js';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { Rng } from '../../../src/train/rng.js';
import { checkGradients } from '../grad-check.js';
import { gradientsFor } from './window-reference.js';

// Well-separated values (a shuffled grid) so that no finite-difference step of 1e-6 can
// change which element of a window is the maximum.
function distinctValues(n: number, seed: number): number[] {
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
  new Rng(seed).shuffle(v);
  return v;
}

describe('MaxPool gradient', () => {
  test('3x3 windows, stride 2, pads 1 (overlapping)', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3, 7, 7], values: distinctValues(2 * 3 * 7 * 7, 1) } },
      build: (b, v) =>
        b.op1('MaxPool', [v.x!], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
    });
  });

  test('3x2 kernel, strides [1, 2], dilations [2, 1], asymmetric pads, ceil_mode', async () => {
    await checkGradients({
      inputs: { x: { dims: [1, 2, 7, 7], values: distinctValues(2 * 7 * 7, 2) } },
      build: (b, v) =>
        b.op1('MaxPool', [v.x!], {
          kernel_shape: [3, 2],
          strides: [1, 2],
          dilations: [2, 1],
          pads: [1, 0, 1, 1],
          ceil_mode: 1,
        }),
    });
  });

  test('1-D, and a forward node that already outputs Indices', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 2, 9], values: distinctValues(36, 3) } },
      build: (b, v) => b.op1('MaxPool', [v.x!], { kernel_shape: [3], strides: [2], pads: [1, 1] }),
    });
    await checkGradients({
      inputs: { x: { dims: [1, 2, 5, 6], values: distinctValues(60, 4) } },
      build: (b, v) =>
        b.op('MaxPool', [v.x!], { kernel_shape: [2, 2], strides: [1, 1] }, { outputs: 2 })[0]!,
    });
  });

  test('hand-worked: a shared maximum receives the sum of its windows', async () => {
    // x = [1, 3, 2, 0, 5], windows of 2 with stride 1: maxima 3, 3, 2, 5 at positions 1, 1, 2, 4.
    const feeds = { x: makeTensor('float64', [1, 1, 5], [1, 3, 2, 0, 5]) };
    const { grads, ops } = await gradientsFor(
      feeds,
      (b, v) => b.op1('MaxPool', [v.x!], { kernel_shape: [2] }),
      () => [10, 20, 30, 40],
    );
    assert.deepEqual(Array.from(grads.x!), [0, 30, 30, 0, 40]);
    // The forward node had no Indices output: the backward graph adds its own MaxPool.
    assert.equal(ops.filter((o) => o === 'MaxPool').length, 2);
  });

  test('auto_pad SAME_LOWER is rejected naming the node', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [1, 1, 4, 4]);
    const y = b.op1('MaxPool', [x], { kernel_shape: [2, 2], auto_pad: 'SAME_LOWER' }, 'pool_same');
    b.output(b.op1('ReduceMean', [y], { keepdims: 0 }), 'loss');
    assert.throws(
      () => buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] }),
      (e: unknown) => e instanceof GradientError && /pool_same/.test(e.message),
    );
  });
});
