// LayerNormalization gradients: float64 finite differences (ONNX Runtime has a double
// kernel) for the default last axis, a leading axis, a negative axis, without bias; and a
// float32 case where the forward node also outputs Mean and InvStdDev, which the rule then
// reuses (eps 1e-2 is too coarse for a non-linear op in float32: eps 1e-3, atol 2e-3 +
// rtol 2e-2).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GraphBuilder } from '../../../src/onnx/builder.js';
import { checkGradients } from '../grad-check.js';

describe('LayerNormalization gradient', () => {
  test('axis -1 on [2,3,4], scale and bias [4]', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3, 4] }, scale: { dims: [4] }, bias: { dims: [4] } },
      build: (b, v) => b.layerNorm(v.x!, v.scale!, v.bias!, 1e-3),
    });
  });

  test('axis 1 on [2,3,4] (normalised over the last two axes), scale [3,4], no bias', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3, 4] }, scale: { dims: [3, 4] } },
      build: (b, v) => b.layerNorm(v.x!, v.scale!, null, 1e-5, 1),
    });
  });

  test('axis -2 on [3,2,5] with bias [2,5]', async () => {
    await checkGradients({
      inputs: { x: { dims: [3, 2, 5] }, scale: { dims: [2, 5] }, bias: { dims: [2, 5] } },
      build: (b, v) => b.layerNorm(v.x!, v.scale!, v.bias!, 1e-5, -2),
    });
  });

  test('float32 with the Mean and InvStdDev outputs present (reused, not recomputed)', async () => {
    await checkGradients({
      dtype: 'float32',
      eps: 1e-3,
      rtol: 2e-2,
      atol: 2e-3,
      inputs: { x: { dims: [3, 6] }, scale: { dims: [6] }, bias: { dims: [6] } },
      build: (b, v) =>
        b.op(
          'LayerNormalization',
          [v.x!, v.scale!, v.bias!],
          { axis: -1, epsilon: 1e-5 },
          { outputs: 3 },
        )[0]!,
    });
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [3, 6]);
    const s = b.input('s', 'float32', [6]);
    const y = b.op('LayerNormalization', [x, s], {}, { outputs: 3 })[0]!;
    b.output(b.op1('ReduceMean', [b.mul(y, y)], { keepdims: 0 }), 'loss');
    const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x', 's'] });
    // The only ReduceMeans are the loss and the two in dx's formula: no recomputed statistics.
    assert.equal(g.model.graph.nodes.filter((n) => n.opType === 'ReduceMean').length, 3);
  });
});
