// Cast: float to float passes the gradient back in the input's dtype; through an integer
// type nothing flows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GraphBuilder } from '../../../src/onnx/builder.js';
import { float32 } from '../../../src/onnx/tensor.js';
import { Session } from '../../../src/runtime/session.js';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

test('float64 -> float32 -> float64 (finite differences at float32 precision)', async () => {
  await checkGradients({
    inputs: { x: { dims: [2, 3] } },
    build: (b, v) => b.op1('Cast', [b.op1('Cast', [v.x!], { to: 1 })], { to: 11 }),
    rtol: 1e-4,
    atol: 1e-5,
    eps: 1e-3,
  });
});

test('exact: a float32 input cast to float64 gets a float32 gradient', async () => {
  const { grads } = await exactGradients({
    inputs: { x: { dims: [2], values: [1.5, -2], dtype: 'float32' } },
    build: (b, v) => b.mul(b.op1('Cast', [v.x!], { to: 11 }), b.scalar(0.25, 'float64')),
    weights: [3, -4],
  });
  assert.deepEqual(grads.x, [0.75, -1]);
});

test('through int64 no gradient flows; only the float path reaches x', async () => {
  const b = new GraphBuilder();
  const x = b.input('x', 'float32', [3]);
  const back = b.op1('Cast', [b.op1('Cast', [x], { to: 7 })], { to: 1 });
  b.output(b.op1('ReduceSum', [b.mul(back, x)], { keepdims: 0 }), 'loss');
  const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] });
  const s = await Session.create(g.model, { threads: 1 });
  const out = await s.run({ x: float32([3], [1.7, -2.2, 3]) });
  await s.release();
  // loss = Σ trunc(x) · x: only the second factor carries a gradient, d/dx = trunc(x).
  assert.deepEqual(Array.from(out[g.gradOutputs.x!]!.data as Float32Array), [1, -2, 3]);
});
