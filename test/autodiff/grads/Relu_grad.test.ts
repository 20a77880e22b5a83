// Relu's gradient dy · float(x > 0): exact values at and around the kink, in both float
// types, and the backward graph uses the cast mask rather than Where.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GraphBuilder } from '../../../src/onnx/builder.js';
import { exactGradients } from './exact-grad.js';

describe('Relu gradient', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    test(`exact: dy where x > 0, 0 at and below the kink (${dtype})`, async () => {
      const { grads } = await exactGradients({
        inputs: { x: { dims: [2, 3], values: [-2, 0, 0.5, 3, -1e-7, 1e-7], dtype } },
        build: (b, v) => b.relu(v.x!),
        weights: [1, 2, 3, 4, 5, 6],
      });
      assert.deepEqual(grads.x, [0, 0, 3, 4, 0, 6]);
    });
  }

  test('the backward pass is Greater -> Cast -> Mul, with no Where', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 4]);
    b.output(b.op1('ReduceSum', [b.relu(x)], { keepdims: 0 }), 'loss');
    const { model } = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] });
    const ops = model.graph.nodes.map((n) => n.opType);
    assert.ok(!ops.includes('Where'), ops.join(' '));
    const cast = model.graph.nodes.find((n) => n.opType === 'Cast')!;
    assert.deepEqual(cast.attrs.to, { type: 'int', value: 1 }, 'cast to float32');
  });
});
