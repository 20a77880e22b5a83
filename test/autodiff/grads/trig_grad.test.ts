// Sin and Cos (the sinusoidal time embedding of the diffusion U-Net): float64 finite
// differences, and the exact derivatives of Σ sin x and Σ cos x.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

describe('Sin and Cos gradients', () => {
  for (const op of ['Sin', 'Cos']) {
    test(`${op}: finite differences (float64) over several periods`, async () => {
      await checkGradients({
        inputs: { x: { dims: [3, 5], transform: (v) => 4 * v } },
        build: (b, v) => b.op1(op, [v.x!]),
      });
    });
  }

  test('exact: d/dx Σ sin x = cos x, d/dx Σ cos x = −sin x', async () => {
    const xs = [-3, -1, 0, 0.5, Math.PI / 2, 4];
    const sin = await exactGradients({
      inputs: { x: { dims: [xs.length], values: xs } },
      build: (b, v) => b.op1('Sin', [v.x!]),
    });
    const cos = await exactGradients({
      inputs: { x: { dims: [xs.length], values: xs } },
      build: (b, v) => b.op1('Cos', [v.x!]),
    });
    xs.forEach((x, i) => {
      assert.ok(Math.abs(sin.grads.x![i]! - Math.cos(x)) < 1e-12, `sin' at ${x}`);
      assert.ok(Math.abs(cos.grads.x![i]! + Math.sin(x)) < 1e-12, `cos' at ${x}`);
    });
  });
});
