// Clip: bounds as optional inputs (opset 11+) or attributes (opset < 11); zero gradient
// outside [min, max], dy at and inside the bounds; differentiated bounds get dy where they
// bind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

const LO = -0.5;
const HI = 0.7;
/** Keeps a draw 0.05 away from both bounds (the kinks). */
const offBounds = (v: number) => (Math.abs(v - LO) < 0.05 || Math.abs(v - HI) < 0.05 ? v + 0.1 : v);

test('both bounds, only min, only max, no bounds', async () => {
  for (const [useLo, useHi] of [
    [true, true],
    [true, false],
    [false, true],
    [false, false],
  ]) {
    await checkGradients({
      inputs: { x: { dims: [3, 4], transform: offBounds } },
      build: (b, v) => {
        const ins = [v.x!, useLo ? b.scalar(LO, 'float64') : null];
        if (useHi) ins.push(b.scalar(HI, 'float64'));
        return b.op1('Clip', ins);
      },
    });
  }
});

test('differentiated bounds', async () => {
  await checkGradients({
    inputs: {
      x: { dims: [3, 4], transform: offBounds },
      lo: { dims: [], values: [LO] },
      hi: { dims: [], values: [HI] },
    },
    build: (b, v) => b.op1('Clip', [v.x!, v.lo!, v.hi!]),
  });
});

test('exact: dy passes at the bounds and inside, not outside', async () => {
  const { grads } = await exactGradients({
    inputs: {
      x: { dims: [5], values: [-2, -0.5, 0, 0.7, 3] },
      lo: { dims: [], values: [-0.5] },
      hi: { dims: [], values: [0.7] },
    },
    build: (b, v) => b.op1('Clip', [v.x!, v.lo!, v.hi!]),
    weights: [2, 3, 4, 5, 6],
  });
  assert.deepEqual(grads.x, [0, 3, 4, 5, 0]);
  assert.deepEqual(grads.lo, [2]);
  assert.deepEqual(grads.hi, [6]);
});

test('exact: opset 10 Clip with min/max attributes (float32: no double Clip-6 kernel)', async () => {
  const { grads } = await exactGradients({
    opset: 10,
    inputs: { x: { dims: [4], values: [-2, -0.25, 0.5, 3], dtype: 'float32' } },
    build: (b, v) => b.op1('Clip', [v.x!], { min: -1, max: 1 }),
  });
  assert.deepEqual(grads.x, [0, 1, 1, 0]);
});
