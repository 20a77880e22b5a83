// Softmax and LogSoftmax (opset 13 semantics: one axis, default -1): negative and positive
// axes, hand-worked cases, and the refusal of opset < 13 graphs (coerced 2-D semantics).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GradientError } from '../../../src/util/errors.js';
import { GraphBuilder } from '../../../src/onnx/builder.js';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

for (const op of ['Softmax', 'LogSoftmax']) {
  describe(op, () => {
    test('default axis (-1) and axes -2, -3 on [2,3,4]', async () => {
      for (const axis of [undefined, -2, -3]) {
        await checkGradients({
          inputs: { x: { dims: [2, 3, 4] } },
          build: (b, v) => b.op1(op, [v.x!], { axis }),
        });
      }
    });
    test('axis 1 on a 2-D input', async () => {
      await checkGradients({
        inputs: { x: { dims: [3, 5] } },
        build: (b, v) => b.op1(op, [v.x!], { axis: 1 }),
      });
    });
    test('opset 12 graphs are refused with a GradientError naming the node', () => {
      const b = new GraphBuilder({ opset: 12 });
      const x = b.input('x', 'float64', [2, 3]);
      b.output(
        b.op1('ReduceSum', [b.op1(op, [x], { axis: 1 }, 'head_softmax')], { keepdims: 0 }),
        'loss',
      );
      assert.throws(
        () => buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] }),
        (e) =>
          e instanceof GradientError &&
          e.message.includes('head_softmax') &&
          /opset 13/.test(e.message),
      );
    });
  });
}

test('exact: softmax of [0, 0] with loss y0 gives [1/4, -1/4]', async () => {
  const { grads } = await exactGradients({
    inputs: { x: { dims: [1, 2], values: [0, 0] } },
    build: (b, v) => b.op1('Softmax', [v.x!]),
    weights: [1, 0],
  });
  // dy0/dx0 = y0 (1 − y0), dy0/dx1 = −y0 y1 with y = [1/2, 1/2].
  assert.deepEqual(grads.x, [0.25, -0.25]);
});

test('exact: log-softmax over axis 0 of [[0, 1], [0, 1]] with loss log y[0][·]', async () => {
  const { grads } = await exactGradients({
    inputs: { x: { dims: [2, 2], values: [0, 1, 0, 1] } },
    build: (b, v) => b.op1('LogSoftmax', [v.x!], { axis: 0 }),
    weights: [1, 1, 0, 0],
  });
  // Each column is softmax over two equal entries: d log y0 / dx = [1 − 1/2, −1/2].
  assert.deepEqual(grads.x, [0.5, 0.5, -0.5, -0.5]);
});
