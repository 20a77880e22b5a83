// Dropout: identity in inference mode (no or false training_mode, ratio 0, opset < 12);
// dy · mask / (1 − ratio) in training mode, with the mask the same run drew.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GradientError } from '../../../src/util/errors.js';
import { GraphBuilder, type Value } from '../../../src/onnx/builder.js';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { checkGradients } from '../grad-check.js';
import { exactGradients } from './exact-grad.js';

const SEED = { type: 'int', value: 7 } as const;
const N = 24;
const xs = Array.from({ length: N }, (_, i) => i - 10.5);
const ws = Array.from({ length: N }, (_, i) => 1 + (i % 5));

describe('inference mode: identity', () => {
  test('no training_mode input (finite differences)', async () => {
    await checkGradients({
      inputs: { x: { dims: [2, 3] } },
      build: (b, v) => b.op1('Dropout', [v.x!, b.scalar(0.3, 'float64')], { seed: SEED }),
    });
  });
  for (const [name, training, ratio] of [
    ['training_mode false', 0, 0.5],
    ['training_mode true with ratio 0', 1, 0],
  ] as const) {
    test(name, async () => {
      const { grads } = await exactGradients({
        inputs: { x: { dims: [N], values: xs } },
        build: (b, v) =>
          b.op('Dropout', [v.x!, b.scalar(ratio, 'float64'), boolConst(b, training)], {
            seed: SEED,
          })[0]!,
        weights: ws,
      });
      assert.deepEqual(grads.x, ws);
    });
  }
  test('opset 10 (ratio attribute, inference only)', async () => {
    const { grads } = await exactGradients({
      opset: 10,
      inputs: { x: { dims: [N], values: xs } },
      build: (b, v) => b.op1('Dropout', [v.x!], { ratio: 0.4 }),
      weights: ws,
    });
    assert.deepEqual(grads.x, ws);
  });
});

function boolConst(b: GraphBuilder, v: number): Value {
  return b.constant(makeTensor('bool', [], [v]));
}

/** Checks dx = w · mask / (1 − ratio) and y = x · mask / (1 − ratio) from one run. */
function checkTraining(
  r: { grads: Record<string, number[]>; extras: Record<string, number[]> },
  ratio: number,
  names: { y: string; mask: string },
): void {
  const mask = r.extras[names.mask]!;
  const y = r.extras[names.y]!;
  assert.ok(mask.includes(0) && mask.includes(1), `mask mixes kept and dropped: ${mask}`);
  const scale = 1 / (1 - ratio);
  y.forEach((v, i) => assert.ok(Math.abs(v - xs[i]! * mask[i]! * scale) < 1e-12, `y[${i}] = ${v}`));
  r.grads.x!.forEach((g, i) =>
    assert.ok(Math.abs(g - ws[i]! * mask[i]! * scale) < 1e-12, `dx[${i}] = ${g}`),
  );
}

describe('training mode', () => {
  test('constant training_mode true, constant ratio 0.25', async () => {
    let outs: Value[] = [];
    const r = await exactGradients({
      inputs: { x: { dims: [N], values: xs } },
      build: (b, v) => {
        outs = b.op(
          'Dropout',
          [v.x!, b.scalar(0.25, 'float64'), boolConst(b, 1)],
          { seed: SEED },
          { outputs: 2 },
        );
        return outs[0]!;
      },
      extras: () => outs,
      weights: ws,
    });
    checkTraining(r, 0.25, { y: outs[0]!.name, mask: outs[1]!.name });
  });
  test('training_mode and ratio fed at run time', async () => {
    for (const training of [1, 0]) {
      let outs: Value[] = [];
      const r = await exactGradients({
        inputs: {
          x: { dims: [N], values: xs },
          ratio: { dims: [], values: [0.5], constant: true },
          t: { dims: [], dtype: 'bool', values: [training], constant: true },
        },
        build: (b, v) => {
          outs = b.op('Dropout', [v.x!, v.ratio!, v.t!], { seed: SEED }, { outputs: 2 });
          return outs[0]!;
        },
        extras: () => outs,
        weights: ws,
      });
      if (training) checkTraining(r, 0.5, { y: outs[0]!.name, mask: outs[1]!.name });
      else assert.deepEqual(r.grads.x, ws);
    }
  });
  test('training mode without the mask output is refused, naming the node', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float64', [3]);
    const y = b.op1('Dropout', [x, b.scalar(0.5, 'float64'), boolConst(b, 1)], {}, 'drop1');
    b.output(b.op1('ReduceSum', [y], { keepdims: 0 }), 'loss');
    assert.throws(
      () => buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] }),
      (e) => e instanceof GradientError && e.message.includes('drop1'),
    );
  });
});
