// Pow: constant and tensor exponents, broadcasting either way, integer exponents with a
// negative base, and the exponent gradient's zero where the base is not positive.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { checkGradients, positive } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

test('constant exponents 2.5 and -1.5 (positive base)', async () => {
  for (const p of [2.5, -1.5]) {
    await checkGradients({
      inputs: { x: { dims: [2, 3], transform: positive() } },
      build: (b, v) => b.pow(v.x!, p),
    });
  }
});

test('tensor exponent broadcast: x [2,3] ^ p [3] and x [3] ^ p [2,1,3]', async () => {
  await checkGradients({
    inputs: { x: { dims: [2, 3], transform: positive() }, p: { dims: [3] } },
    build: (b, v) => b.op1('Pow', [v.x!, v.p!]),
  });
  await checkGradients({
    inputs: { x: { dims: [3], transform: positive() }, p: { dims: [2, 1, 3] } },
    build: (b, v) => b.op1('Pow', [v.x!, v.p!]),
  });
});

test('int64 exponent 3 with a negative base: dx = 3x²', async () => {
  await checkGradients({
    inputs: { x: { dims: [2, 3] } },
    build: (b, v) => b.op1('Pow', [v.x!, b.constant(makeTensor('int64', [], [3]))]),
  });
});

test('exact: dx = p x^(p−1); dp = y ln x for x > 0 and 0 for x ≤ 0', async () => {
  const { grads } = await exactGradients({
    inputs: {
      x: { dims: [4], values: [-2, 0, 3, 0.5] },
      p: { dims: [4], values: [2, 2, 2, 3] },
    },
    build: (b, v) => b.op1('Pow', [v.x!, v.p!]),
  });
  assert.deepEqual(grads.x, [-4, 0, 6, 0.75]);
  const dp = grads.p!;
  assert.deepEqual(dp.slice(0, 2), [0, 0]);
  assert.ok(Math.abs(dp[2]! - 9 * Math.log(3)) < 1e-12);
  assert.ok(Math.abs(dp[3]! - 0.125 * Math.log(0.5)) < 1e-12);
});

test('a float32 exponent of a float64 base gets a float32 gradient', async () => {
  const { grads } = await exactGradients({
    inputs: {
      x: { dims: [2], values: [2, 3] },
      p: { dims: [2], values: [2, 1], dtype: 'float32' },
    },
    build: (b, v) => b.op1('Pow', [v.x!, v.p!]),
  });
  assert.deepEqual(grads.x, [4, 1]);
  assert.deepEqual(grads.p, [Math.fround(4 * Math.log(2)), Math.fround(3 * Math.log(3))]);
});
