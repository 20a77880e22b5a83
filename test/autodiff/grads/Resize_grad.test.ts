// Resize (nearest, whole upsampling factors) gradients. ONNX Runtime's CPU Resize has no
// double kernel, so finite differences run in float32 (Resize is linear: eps 1e-2, atol
// 2e-3 + rtol 1e-2); each case is also checked exactly against a scatter-add of dy through
// the forward index map written from the ONNX definition.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { nearestSource } from '../../../src/autodiff/grads/Resize_grad.js';
import { GraphBuilder, type Value } from '../../../src/onnx/builder.js';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { Session } from '../../../src/runtime/session.js';
import { GradientError } from '../../../src/util/errors.js';
import { checkGradients } from '../grad-check.js';
import { assertClose, gradientsFor, randomFeeds } from './window-reference.js';

interface Case {
  name: string;
  x: number[];
  sizes: number[];
  attrs: Record<string, string>;
}

const cases: Case[] = [
  {
    name: 'default attributes (half_pixel, round_prefer_floor), 2x2',
    x: [2, 3, 3, 4],
    sizes: [2, 3, 6, 8],
    attrs: {},
  },
  {
    name: "PyTorch's export (asymmetric, floor), factors 2 and 3",
    x: [1, 2, 3, 2],
    sizes: [1, 2, 6, 6],
    attrs: { coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
  },
  {
    name: 'pytorch_half_pixel, round_prefer_ceil, one axis only, factor 4',
    x: [2, 2, 3, 3],
    sizes: [2, 2, 3, 12],
    attrs: {
      coordinate_transformation_mode: 'pytorch_half_pixel',
      nearest_mode: 'round_prefer_ceil',
    },
  },
];

const resize = (b: GraphBuilder, x: Value, sizes: Value, attrs: Record<string, string>) =>
  b.op1('Resize', [x, null, null, sizes], { mode: 'nearest', ...attrs });

/** dx[i] = Σ of dy over the outputs whose nearest source is i (any rank, NCHW-like). */
function scatterRef(
  xd: number[],
  yd: number[],
  dy: ArrayLike<number>,
  ctm: string,
  nearest: string,
): Float64Array {
  const dx = new Float64Array(xd.reduce((p, d) => p * d, 1));
  const rank = xd.length;
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < dy.length; o++) {
    let rem = o;
    for (let k = rank - 1; k >= 0; k--) {
      idx[k] = rem % yd[k]!;
      rem = Math.floor(rem / yd[k]!);
    }
    let flat = 0;
    for (let k = 0; k < rank; k++) {
      flat = flat * xd[k]! + nearestSource(idx[k]!, xd[k]!, yd[k]!, ctm, nearest);
    }
    dx[flat] = dx[flat]! + dy[o]!;
  }
  return dx;
}

describe('Resize gradient', () => {
  for (const c of cases) {
    test(c.name, async () => {
      await checkGradients({
        dtype: 'float32',
        eps: 1e-2,
        rtol: 1e-2,
        atol: 2e-3,
        inputs: { x: { dims: c.x } },
        build: (b, v) => resize(b, v.x!, b.ints(c.sizes), c.attrs),
      });
      let gy: number[] = [];
      const { y, grads } = await gradientsFor(
        randomFeeds({ x: { dims: c.x } }, 4),
        (b, v) => resize(b, v.x!, b.ints(c.sizes), c.attrs),
        (dims) => {
          gy = Array.from({ length: dims.reduce((p, d) => p * d, 1) }, (_, i) =>
            Math.sin(0.7 * i + 0.2),
          );
          return gy;
        },
      );
      assert.deepEqual(y.dims, c.sizes);
      const ref = scatterRef(
        c.x,
        c.sizes,
        gy,
        c.attrs.coordinate_transformation_mode ?? 'half_pixel',
        c.attrs.nearest_mode ?? 'round_prefer_floor',
      );
      assertClose(grads.x!, ref, 1e-5, 1e-6, 'dx');
    });
  }

  test('hand-worked: 2x2 -> 4x4, each input gets the sum of its 2x2 block', async () => {
    const w = Array.from({ length: 16 }, (_, i) => i + 1);
    const { grads } = await gradientsFor(
      { x: makeTensor('float32', [1, 1, 2, 2], [1, 2, 3, 4]) },
      (b, v) => resize(b, v.x!, b.ints([1, 1, 4, 4]), {}),
      () => w,
    );
    // Blocks of the row-major 4x4 weights 1..16: {1,2,5,6}, {3,4,7,8}, {9,10,13,14}, {11,12,15,16}.
    assert.deepEqual(Array.from(grads.x!), [14, 22, 46, 54]);
  });

  test('symbolic batch, scales [1, 1, 2, 2] (the form the U-Net uses)', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 2, 3, 3]);
    const scales = b.constant(makeTensor('float32', [4], [1, 1, 2, 2]), 'scales');
    const y = b.op1('Resize', [x, null, scales], { mode: 'nearest' });
    assert.deepEqual(y.shape, ['N', 2, 6, 6]);
    const gy = Array.from({ length: 3 * 2 * 36 }, (_, i) => Math.cos(0.3 * i));
    const r = b.input('gy', 'float32', ['N', 2, 6, 6]);
    b.output(b.op1('ReduceSum', [b.mul(y, r)], { keepdims: 0 }), 'loss');
    const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] });
    const s = await Session.create(g.model, { threads: 1 });
    const feeds = randomFeeds({ x: { dims: [3, 2, 3, 3] } }, 9);
    const out = await s.run({ ...feeds, gy: makeTensor('float32', [3, 2, 6, 6], gy) });
    await s.release();
    const dx = out[g.gradOutputs.x!]!;
    assert.deepEqual(dx.dims, [3, 2, 3, 3]);
    const ref = scatterRef([3, 2, 3, 3], [3, 2, 6, 6], gy, 'half_pixel', 'round_prefer_floor');
    assertClose(Float64Array.from(dx.data as Float32Array), ref, 1e-5, 1e-6, 'dx');
  });

  test('no rule where the map is not block copying, for linear mode, or for downsampling', () => {
    const grad = (xDims: number[], sizes: number[], attrs: Record<string, string>) => {
      const b = new GraphBuilder();
      const x = b.input('x', 'float32', xDims);
      const y = b.op1('Resize', [x, null, null, b.ints(sizes)], attrs, 'up');
      b.output(b.op1('ReduceSum', [y], { keepdims: 0 }), 'loss');
      return () => buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] });
    };
    assert.throws(
      grad([1, 1, 2, 2], [1, 1, 4, 4], {
        mode: 'nearest',
        coordinate_transformation_mode: 'align_corners',
        nearest_mode: 'floor',
      }),
      (e: unknown) =>
        e instanceof GradientError &&
        /node up: axis 2: .*align_corners.*output 2 reads input 0/.test(e.message),
    );
    assert.throws(
      grad([1, 1, 2, 2], [1, 1, 4, 4], { mode: 'linear' }),
      (e: unknown) => e instanceof GradientError && /mode 'linear'/.test(e.message),
    );
    assert.throws(
      grad([1, 1, 4, 4], [1, 1, 2, 2], { mode: 'nearest' }),
      (e: unknown) => e instanceof GradientError && /4 -> 2 is not upsampling/.test(e.message),
    );
  });
});

describe('nearestSource follows the ONNX definition', () => {
  test('half_pixel round_prefer_floor, 3 -> 6 and 2 -> 5', () => {
    const map = (i: number, o: number, c: string, n: string) =>
      Array.from({ length: o }, (_, k) => nearestSource(k, i, o, c, n));
    assert.deepEqual(map(3, 6, 'half_pixel', 'round_prefer_floor'), [0, 0, 1, 1, 2, 2]);
    // 2 -> 5: x = (o + 0.5) / 2.5 - 0.5 = -0.3, 0.1, 0.5, 0.9, 1.3 -> 0, 0, 0 (0.5 to floor), 1, 1.
    assert.deepEqual(map(2, 5, 'half_pixel', 'round_prefer_floor'), [0, 0, 0, 1, 1]);
    assert.deepEqual(map(2, 5, 'half_pixel', 'round_prefer_ceil'), [0, 0, 1, 1, 1]);
    // align_corners 2 -> 4 with floor: x = o / 3 -> 0, 0, 0, 1.
    assert.deepEqual(map(2, 4, 'align_corners', 'floor'), [0, 0, 0, 1]);
  });
});
