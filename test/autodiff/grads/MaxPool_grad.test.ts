// MaxPool gradients. Two backward forms: float32 uses strided slices + ArgMax + one
// ConvTranspose; other types use MaxPool's Indices + ScatterElements (ONNX Runtime's
// ConvTranspose is float32-only). Each geometry is checked through both: float64 finite
// differences (default tolerances) and float32 finite differences (eps 1e-2, atol 1e-3 +
// rtol 1e-2; MaxPool is piecewise linear, and inputs lie on a 0.05 grid so a step of 1e-2
// never changes a window's maximum), plus hand-worked cases with shared maxima and ties.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GradientError } from '../../../src/util/errors.js';
import { GraphBuilder } from '../../../src/onnx/builder.js';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { checkGradients } from '../grad-check.js';
import { gradientsFor } from './window-reference.js';

/** Distinct values on a 0.05 grid, shuffled. */
function distinctValues(n: number, seed: number): number[] {
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
  new Rng(seed).shuffle(v);
  return v;
}

const cases: {
  name: string;
  dims: number[];
  attrs: Record<string, number[] | number>;
  indices?: boolean;
}[] = [
  {
    name: '3x3 windows, stride 2, pads 1 (overlapping)',
    dims: [2, 3, 7, 7],
    attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
  },
  {
    name: '3x2 kernel, strides [1, 2], dilations [2, 1], asymmetric pads, ceil_mode',
    dims: [1, 2, 7, 7],
    attrs: {
      kernel_shape: [3, 2],
      strides: [1, 2],
      dilations: [2, 1],
      pads: [1, 0, 1, 1],
      ceil_mode: 1,
    },
  },
  {
    name: '1-D, kernel 3, stride 2, pads 1',
    dims: [2, 2, 9],
    attrs: { kernel_shape: [3], strides: [2], pads: [1, 1] },
  },
  {
    name: 'forward node that also outputs Indices',
    dims: [1, 2, 5, 6],
    attrs: { kernel_shape: [2, 2], strides: [1, 1] },
    indices: true,
  },
];

describe('MaxPool gradient', () => {
  for (const c of cases) {
    for (const dtype of ['float64', 'float32'] as const) {
      test(`${c.name} (${dtype})`, async () => {
        const n = c.dims.reduce((p, d) => p * d, 1);
        await checkGradients({
          dtype,
          ...(dtype === 'float32' ? { eps: 1e-2, rtol: 1e-2, atol: 1e-3 } : {}),
          inputs: { x: { dims: c.dims, values: distinctValues(n, n) } },
          build: (b, v) => b.op('MaxPool', [v.x!], c.attrs, { outputs: c.indices ? 2 : 1 })[0]!,
        });
      });
    }
  }

  for (const dtype of ['float64', 'float32'] as const) {
    test(`hand-worked (${dtype}): shared maxima add up, ties go to the first maximum`, async () => {
      // x = [1, 3, 2, 0, 5, 5], windows of 2 with stride 1: maxima 3, 3, 2, 5, 5 at positions
      // 1, 1, 2, 4, 4 (the last window ties 5 with 5: the first one wins).
      const feeds = { x: makeTensor(dtype, [1, 1, 6], [1, 3, 2, 0, 5, 5]) };
      const { grads, ops } = await gradientsFor(
        feeds,
        (b, v) => b.op1('MaxPool', [v.x!], { kernel_shape: [2] }),
        () => [10, 20, 30, 40, 50],
      );
      assert.deepEqual(Array.from(grads.x!), [0, 30, 30, 0, 90, 0]);
      // float32 routes with ArgMax; float64 recomputes MaxPool's Indices and scatters.
      assert.equal(ops.includes('ScatterElements'), dtype === 'float64');
      assert.equal(ops.filter((o) => o === 'MaxPool').length, dtype === 'float64' ? 2 : 1);
    });
  }

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
