// Reciprocal, LeakyRelu, Softplus, Elu and HardSigmoid: finite differences, and for every
// unary rule the exact derivative of Σ f(x) against its closed form.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { GraphBuilder, Value } from '../../../src/onnx/builder.js';
import { awayFromZero, checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

/** Asserts |a − e| ≤ tol · max(1, |e|) elementwise. */
function near(actual: number[], expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${what}[${i}]: ${a} vs ${e}`);
  });
}

const sigma = (v: number) => 1 / (1 + Math.exp(-v));

// Float32 kernels only (ONNX Runtime's CPU build has no double kernel for these ops, checked
// at session creation): finite differences with eps 1e-2, rtol 2e-2, atol 2e-3.
const FLOAT32_ONLY = new Set(['Erf', 'Softplus', 'Elu', 'HardSigmoid']);

describe('finite differences', () => {
  test('Reciprocal (float64), away from 0', async () => {
    await checkGradients({
      inputs: { x: { dims: [3, 4], transform: awayFromZero(0.5) } },
      build: (b, v) => b.op1('Reciprocal', [v.x!]),
    });
  });
  for (const alpha of [undefined, 0.3]) {
    test(`LeakyRelu (float64) alpha ${alpha ?? 'default'}`, async () => {
      await checkGradients({
        inputs: { x: { dims: [3, 4], transform: awayFromZero() } },
        build: (b, v) => b.op1('LeakyRelu', [v.x!], { alpha }),
      });
    });
  }
  test('Softplus (float32)', async () => {
    await checkGradients({
      dtype: 'float32',
      inputs: { x: { dims: [3, 4], transform: (v) => 2 * v } },
      build: (b, v) => b.op1('Softplus', [v.x!]),
    });
  });
  for (const alpha of [undefined, 0.5]) {
    test(`Elu (float32) alpha ${alpha ?? 'default'}`, async () => {
      await checkGradients({
        dtype: 'float32',
        inputs: { x: { dims: [3, 4], transform: awayFromZero() } },
        build: (b, v) => b.op1('Elu', [v.x!], { alpha }),
      });
    });
  }
  test('HardSigmoid (float32), both the linear part and the clipped parts', async () => {
    // 3x spreads N(0,1) draws over both sides of the kinks at ±2.5 (defaults); draws within
    // 0.1 of a kink are moved off it.
    const spread = (v: number) => {
      const s = 3 * v;
      return Math.abs(Math.abs(s) - 2.5) < 0.1 ? s * 1.2 : s;
    };
    await checkGradients({
      dtype: 'float32',
      inputs: { x: { dims: [4, 5], transform: spread } },
      build: (b, v) => b.op1('HardSigmoid', [v.x!]),
    });
    await checkGradients({
      dtype: 'float32',
      inputs: { x: { dims: [3, 4], transform: (v) => (Math.abs(v + 0.5) < 0.1 ? v + 0.3 : v) } },
      build: (b, v) => b.op1('HardSigmoid', [v.x!], { alpha: 0.5, beta: 0.25 }),
    });
  });
});

describe('exact derivatives of Σ f(x)', () => {
  const xs = [-2, -0.5, 0, 0.25, 1.5, 3];
  const pos = [0.25, 0.5, 1, 2, 4, 9];
  const cases: [string, number[], (b: GraphBuilder, x: Value) => Value, (x: number) => number][] = [
    ['Neg', xs, (b, x) => b.op1('Neg', [x]), () => -1],
    ['Abs (0 at 0)', xs, (b, x) => b.op1('Abs', [x]), (x) => Math.sign(x)],
    ['Sqrt', pos, (b, x) => b.op1('Sqrt', [x]), (x) => 0.5 / Math.sqrt(x)],
    ['Exp', xs, (b, x) => b.op1('Exp', [x]), (x) => Math.exp(x)],
    ['Log', pos, (b, x) => b.op1('Log', [x]), (x) => 1 / x],
    ['Tanh', xs, (b, x) => b.op1('Tanh', [x]), (x) => 1 - Math.tanh(x) ** 2],
    ['Sigmoid', xs, (b, x) => b.op1('Sigmoid', [x]), (x) => sigma(x) * (1 - sigma(x))],
    ['Erf', xs, (b, x) => b.op1('Erf', [x]), (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x)],
    [
      'Reciprocal',
      pos.map((v, i) => (i % 2 ? -v : v)),
      (b, x) => b.op1('Reciprocal', [x]),
      (x) => -1 / (x * x),
    ],
    [
      'LeakyRelu alpha 0.1 (slope alpha at 0)',
      xs,
      (b, x) => b.op1('LeakyRelu', [x], { alpha: 0.1 }),
      (x) => (x > 0 ? 1 : 0.1),
    ],
    ['Softplus', xs, (b, x) => b.op1('Softplus', [x]), sigma],
    [
      'Elu alpha 2',
      xs,
      (b, x) => b.op1('Elu', [x], { alpha: 2 }),
      (x) => (x > 0 ? 1 : 2 * Math.exp(x)),
    ],
    [
      'HardSigmoid alpha 0.5 beta 0.5 (0 where clipped)',
      xs,
      (b, x) => b.op1('HardSigmoid', [x], { alpha: 0.5, beta: 0.5 }),
      (x) => (0.5 * x + 0.5 > 0 && 0.5 * x + 0.5 < 1 ? 0.5 : 0),
    ],
  ];
  for (const [name, values, f, df] of cases) {
    const op = name.split(' ')[0]!;
    const dtype = FLOAT32_ONLY.has(op) ? 'float32' : 'float64';
    test(`${name} (${dtype})`, async () => {
      const { grads } = await exactGradients({
        inputs: { x: { dims: [values.length], values, dtype } },
        build: (b, v) => f(b, v.x!),
      });
      near(grads.x!, values.map(df), dtype === 'float32' ? 2e-6 : 1e-12, name);
    });
  }
});
