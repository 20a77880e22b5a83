// Finite-difference checks of the arithmetic and linear-algebra rules (Add, Sub, Mul, Div,
// MatMul, Gemm, Relu, Identity, ReduceMean), including broadcasting.
import { describe, test } from 'node:test';
import { awayFromZero, checkGradients, positive } from '../grad-check.js';

describe('binary arithmetic with broadcasting', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    test(`${op}: [2,3,4] with [3,1] and with a scalar`, async () => {
      await checkGradients({
        inputs: {
          a: { dims: [2, 3, 4] },
          b: { dims: [3, 1], transform: op === 'Div' ? positive() : undefined },
        },
        build: (b, v) => b.op1(op, [v.a!, v.b!]),
      });
      await checkGradients({
        inputs: {
          a: { dims: [], transform: op === 'Div' ? positive() : undefined },
          b: { dims: [2, 2], transform: op === 'Div' ? positive() : undefined },
        },
        build: (b, v) => b.op1(op, [v.b!, v.a!]),
      });
    });
  }
  test('Mul with both operands broadcast ([2,1,4] x [3,1])', async () => {
    await checkGradients({
      inputs: { a: { dims: [2, 1, 4] }, b: { dims: [3, 1] } },
      build: (b, v) => b.mul(v.a!, v.b!),
    });
  });
});

describe('MatMul', () => {
  const cases: [number[], number[]][] = [
    [
      [3, 4],
      [4, 5],
    ],
    [
      [2, 3, 4],
      [4, 5],
    ],
    [
      [2, 3, 4],
      [2, 4, 5],
    ],
    [
      [2, 1, 3, 4],
      [3, 4, 2],
    ],
    [[4], [4, 3]],
    [[2, 3, 4], [4]],
    [[4], [4]],
  ];
  for (const [a, w] of cases) {
    test(`[${a}] @ [${w}]`, async () => {
      await checkGradients({
        inputs: { a: { dims: a }, w: { dims: w } },
        build: (b, v) => b.matmul(v.a!, v.w!),
      });
    });
  }
});

describe('Gemm', () => {
  for (const transA of [0, 1]) {
    for (const transB of [0, 1]) {
      test(`transA=${transA} transB=${transB}, alpha 0.7, beta 1.3, C broadcast [4]`, async () => {
        await checkGradients({
          inputs: {
            a: { dims: transA ? [5, 3] : [3, 5] },
            w: { dims: transB ? [4, 5] : [5, 4] },
            c: { dims: [4] },
          },
          build: (b, v) => b.gemm(v.a!, v.w!, v.c!, { transA, transB, alpha: 0.7, beta: 1.3 }),
        });
      });
    }
  }
  test('without C, C of shape [3,1]', async () => {
    await checkGradients({
      inputs: { a: { dims: [3, 5] }, w: { dims: [5, 4] } },
      build: (b, v) => b.gemm(v.a!, v.w!, null),
    });
    await checkGradients({
      inputs: { a: { dims: [3, 5] }, w: { dims: [4, 5] }, c: { dims: [3, 1] } },
      build: (b, v) => b.gemm(v.a!, v.w!, v.c!, { transB: 1 }),
    });
  });
});

describe('unary and reductions', () => {
  test('Relu away from the kink, Identity', async () => {
    await checkGradients({
      inputs: { x: { dims: [3, 4], transform: awayFromZero() } },
      build: (b, v) => b.relu(v.x!),
    });
    await checkGradients({
      inputs: { x: { dims: [3, 4] } },
      build: (b, v) => b.op1('Identity', [v.x!]),
    });
  });
  test('ReduceMean: axes, negative axes, keepdims 0, all axes', async () => {
    for (const [axes, keepdims] of [
      [[1], 1],
      [[-1, 0], 0],
      [undefined, 0],
      [[0, 2], 1],
    ] as const) {
      await checkGradients({
        inputs: { x: { dims: [2, 3, 4] } },
        build: (b, v) =>
          b.op1('ReduceMean', [v.x!], { axes: axes ? [...axes] : undefined, keepdims }),
      });
    }
  });
});
