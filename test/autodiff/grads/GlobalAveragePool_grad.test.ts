// GlobalAveragePool gradient. ONNX Runtime's CPU GlobalAveragePool is float32-only: float32
// finite differences (linear op, eps 1e-2, atol 1e-3 + rtol 1e-2) and a hand-worked case.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { checkGradients } from '../grad-check.js';
import { gradientsFor } from './window-reference.js';

describe('GlobalAveragePool gradient', () => {
  test('[2,3,4,5] and 1-D [2,3,7]', async () => {
    for (const dims of [
      [2, 3, 4, 5],
      [2, 3, 7],
    ]) {
      await checkGradients({
        dtype: 'float32',
        eps: 1e-2,
        rtol: 1e-2,
        atol: 1e-3,
        inputs: { x: { dims } },
        build: (b, v) => b.op1('GlobalAveragePool', [v.x!]),
      });
    }
  });

  test('hand-worked: every position of a channel gets dy / (H·W)', async () => {
    const feeds = { x: makeTensor('float32', [1, 2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]) };
    const { grads } = await gradientsFor(
      feeds,
      (b, v) => b.op1('GlobalAveragePool', [v.x!]),
      () => [4, -8],
    );
    assert.deepEqual(Array.from(grads.x!), [1, 1, 1, 1, -2, -2, -2, -2]);
  });
});
