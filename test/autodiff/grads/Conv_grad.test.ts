// Conv gradients. ONNX Runtime's CPU Conv and ConvTranspose are float32-only, so each case
// is checked twice: against central finite differences in float32 (eps 1e-2; Conv is
// bilinear, so the differences carry only float32 rounding of the loss, about 1e-5 / 2e-2;
// tolerance atol 3e-3 + rtol 1e-2), and exactly against a float64 reference backward
// written out in the test (tolerance 1e-4 relative: float32 accumulation in ORT).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GradientError } from '../../../src/util/errors.js';
import { GraphBuilder } from '../../../src/onnx/builder.js';
import { checkGradients } from '../grad-check.js';
import {
  assertClose,
  convBackwardRef,
  type Geo2,
  gradientsFor,
  randomFeeds,
} from './window-reference.js';

interface ConvCase {
  name: string;
  x: number[];
  w: number[];
  bias: boolean;
  attrs: {
    strides?: number[];
    pads?: number[];
    dilations?: number[];
    group?: number;
    auto_pad?: string;
  };
  /** Large inputs: finite differences on w and b only (x is still checked by the reference). */
  fdWeightsOnly?: boolean;
}

const cases: ConvCase[] = [
  {
    name: '2-D stride 2, pad 1, dilation 2, groups 2, width not divisible',
    x: [2, 4, 7, 8],
    w: [6, 2, 3, 3],
    bias: true,
    attrs: { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [2, 2], group: 2 },
  },
  {
    name: '2-D asymmetric pads and strides, 3x2 kernel, no bias',
    x: [2, 3, 6, 5],
    w: [4, 3, 3, 2],
    bias: false,
    attrs: { strides: [2, 1], pads: [0, 1, 2, 0] },
  },
  {
    name: '2-D depthwise (group = channels), stride 3, auto_pad VALID',
    x: [1, 3, 8, 7],
    w: [3, 1, 2, 2],
    bias: true,
    attrs: { strides: [3, 3], group: 3, auto_pad: 'VALID' },
  },
  {
    name: '2-D stride 1 (dx as a flipped-kernel Conv), pads [1, 2, 0, 1], dilations [1, 2], groups 2',
    x: [2, 4, 6, 7],
    w: [4, 2, 3, 2],
    bias: true,
    attrs: { pads: [1, 2, 0, 1], dilations: [1, 2], group: 2 },
  },
  {
    name: '1-D stride 1 with a pad wider than the kernel (dx falls back to ConvTranspose)',
    x: [2, 3, 6],
    w: [2, 3, 2],
    bias: false,
    attrs: { pads: [2, 1] },
  },
  {
    name: '2-D 24x24 (dw batched per image: ≥ 512 output positions), groups 2',
    x: [2, 4, 24, 24],
    w: [6, 2, 3, 3],
    bias: true,
    attrs: { pads: [1, 1, 1, 1], group: 2 },
    fdWeightsOnly: true,
  },
  {
    name: '2-D 26x26 (dw batched per image), stride 1, no padding, groups 1',
    x: [2, 3, 26, 26],
    w: [2, 3, 3, 3],
    bias: false,
    attrs: {},
    fdWeightsOnly: true,
  },
  {
    name: '1x1 pointwise (no slicing needed), 5x5',
    x: [2, 3, 5, 5],
    w: [4, 3, 1, 1],
    bias: true,
    attrs: {},
  },
  {
    name: '1x1 pointwise, 24x24 (batched per image), groups 2',
    x: [1, 4, 24, 24],
    w: [2, 2, 1, 1],
    bias: false,
    attrs: { group: 2 },
    fdWeightsOnly: true,
  },
  {
    name: '1-D stride 2, pad [1, 0], dilation 2, groups 2',
    x: [2, 4, 10],
    w: [4, 2, 3],
    bias: true,
    attrs: { strides: [2], pads: [1, 0], dilations: [2], group: 2 },
  },
];

/** Lifts a 1-D geometry to 2-D with height 1. */
function geo2(c: ConvCase): Geo2 {
  const r = c.x.length - 2;
  const k = c.w.slice(2);
  const s = c.attrs.strides ?? new Array<number>(r).fill(1);
  const d = c.attrs.dilations ?? new Array<number>(r).fill(1);
  const p = c.attrs.pads ?? new Array<number>(2 * r).fill(0);
  if (r === 2)
    return {
      kernel: [k[0]!, k[1]!],
      strides: [s[0]!, s[1]!],
      dilations: [d[0]!, d[1]!],
      pads: [p[0]!, p[1]!, p[2]!, p[3]!],
    };
  return {
    kernel: [1, k[0]!],
    strides: [1, s[0]!],
    dilations: [1, d[0]!],
    pads: [0, p[0]!, 0, p[1]!],
  };
}
const as4 = (d: number[]): [number, number, number, number] =>
  d.length === 4 ? [d[0]!, d[1]!, d[2]!, d[3]!] : [d[0]!, d[1]!, 1, d[2]!];

describe('Conv gradient', () => {
  for (const c of cases) {
    test(`${c.name}: finite differences (float32)`, async () => {
      await checkGradients({
        dtype: 'float32',
        eps: 1e-2,
        rtol: 1e-2,
        atol: 3e-3,
        inputs: {
          x: { dims: c.x, constant: c.fdWeightsOnly },
          w: { dims: c.w },
          ...(c.bias ? { b: { dims: [c.w[0]!] } } : {}),
        },
        build: (b, v) => b.op1('Conv', c.bias ? [v.x!, v.w!, v.b!] : [v.x!, v.w!], c.attrs),
      });
    });

    test(`${c.name}: equals a float64 reference backward`, async () => {
      const feeds = randomFeeds({ x: { dims: c.x }, w: { dims: c.w }, b: { dims: [c.w[0]!] } }, 7);
      let gy: number[] = [];
      const { y, grads, ops } = await gradientsFor(
        feeds,
        (b, v) => b.op1('Conv', [v.x!, v.w!, v.b!], c.attrs),
        (dims) => {
          gy = Array.from({ length: dims.reduce((p, d) => p * d, 1) }, (_, i) =>
            Math.cos(0.7 * i + 0.3),
          );
          return gy;
        },
      );
      const ref = convBackwardRef(
        feeds.x!.data as Float32Array,
        as4(c.x),
        feeds.w!.data as Float32Array,
        as4(c.w),
        geo2(c),
        c.attrs.group ?? 1,
        gy,
        as4(y.dims),
      );
      // dx is a ConvTranspose unless the strides are 1 and the pads fit inside the kernel.
      const r = c.x.length - 2;
      const eff = c.w.slice(2).map((k, i) => (c.attrs.dilations?.[i] ?? 1) * (k - 1) + 1);
      const flips =
        (c.attrs.strides ?? []).every((s) => s === 1) &&
        (c.attrs.pads ?? []).every((p, i) => p <= eff[i % r]! - 1);
      assert.equal(ops.includes('ConvTranspose'), !flips);
      assertClose(grads.x!, ref.dx, 1e-4, 1e-4, 'dx');
      assertClose(grads.w!, ref.dw, 1e-4, 1e-4, 'dw');
      assertClose(grads.b!, ref.db, 1e-4, 1e-4, 'db');
    });
  }

  test('auto_pad SAME_UPPER is rejected with a GradientError naming the node', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [1, 2, 5, 5]);
    const w = b.input('w', 'float32', [2, 2, 3, 3]);
    const y = b.op1('Conv', [x, w], { auto_pad: 'SAME_UPPER' }, 'conv_same');
    b.output(b.op1('ReduceMean', [y], { keepdims: 0 }), 'loss');
    assert.throws(
      () => buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['w'] }),
      (e: unknown) =>
        e instanceof GradientError && /conv_same/.test(e.message) && /SAME_UPPER/.test(e.message),
    );
  });

  test('a symbolic batch size is supported (reshapes use -1 for the batch)', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 4, 6, 6]);
    const w = b.input('w', 'float32', [4, 2, 3, 3]);
    const y = b.op1('Conv', [x, w], { group: 2, strides: [2, 2], pads: [1, 1, 1, 1] });
    b.output(b.op1('ReduceMean', [y], { keepdims: 0 }), 'loss');
    const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x', 'w'] });
    const { Session } = await import('../../../src/runtime/session.js');
    const s = await Session.create(g.model, { threads: 1 });
    const feeds = randomFeeds({ x: { dims: [3, 4, 6, 6] }, w: { dims: [4, 2, 3, 3] } }, 3);
    const res = await s.run(feeds);
    await s.release();
    // loss = mean(y): dy = 1/numel(y) everywhere.
    const ref = convBackwardRef(
      feeds.x!.data as Float32Array,
      [3, 4, 6, 6],
      feeds.w!.data as Float32Array,
      [4, 2, 3, 3],
      { kernel: [3, 3], strides: [2, 2], dilations: [1, 1], pads: [1, 1, 1, 1] },
      2,
      new Array(3 * 4 * 3 * 3).fill(1 / (3 * 4 * 3 * 3)),
      [3, 4, 3, 3],
    );
    assertClose(res[g.gradOutputs.w!]!.data as Float32Array, ref.dw, 1e-4, 1e-4, 'dw');
    assertClose(res[g.gradOutputs.x!]!.data as Float32Array, ref.dx, 1e-4, 1e-4, 'dx');
  });
});
