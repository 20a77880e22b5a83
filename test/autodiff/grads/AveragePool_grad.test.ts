// AveragePool gradients. ONNX Runtime's CPU AveragePool and ConvTranspose are float32-only,
// so each case is checked against float32 finite differences (AveragePool is linear, so
// only rounding of the loss enters: eps 1e-2, atol 2e-3 + rtol 1e-2), and exactly against
// a float64 reference backward written from the ONNX definition (tolerance 1e-5).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { checkGradients } from '../grad-check.js';
import {
  assertClose,
  averagePoolBackwardRef,
  type Geo2,
  gradientsFor,
  randomFeeds,
} from './window-reference.js';

interface PoolCase {
  name: string;
  x: [number, number, number, number];
  geo: Geo2;
  ceil?: boolean;
}

const cases: PoolCase[] = [
  {
    name: '3x3, stride 2, pads 1, width not divisible',
    x: [2, 3, 7, 6],
    geo: { kernel: [3, 3], strides: [2, 2], dilations: [1, 1], pads: [1, 1, 1, 1] },
  },
  {
    name: '2x3, strides [1, 2], asymmetric pads',
    x: [1, 2, 5, 7],
    geo: { kernel: [2, 3], strides: [1, 2], dilations: [1, 1], pads: [1, 0, 0, 2] },
  },
  {
    name: '3x3, stride 2, pads 1, ceil_mode (last window overhangs the padding)',
    x: [1, 2, 6, 6],
    geo: { kernel: [3, 3], strides: [2, 2], dilations: [1, 1], pads: [1, 1, 1, 1] },
    ceil: true,
  },
  {
    name: '2x2, stride 2, no padding',
    x: [2, 2, 6, 4],
    geo: { kernel: [2, 2], strides: [2, 2], dilations: [1, 1], pads: [0, 0, 0, 0] },
  },
];

const attrsOf = (c: PoolCase, countIncludePad: number) => ({
  kernel_shape: c.geo.kernel,
  strides: c.geo.strides,
  pads: c.geo.pads,
  count_include_pad: countIncludePad,
  ceil_mode: c.ceil ? 1 : 0,
});

describe('AveragePool gradient', () => {
  for (const c of cases) {
    for (const cip of [0, 1]) {
      test(`${c.name}, count_include_pad ${cip}`, async () => {
        await checkGradients({
          dtype: 'float32',
          eps: 1e-2,
          rtol: 1e-2,
          atol: 2e-3,
          inputs: { x: { dims: c.x } },
          build: (b, v) => b.op1('AveragePool', [v.x!], attrsOf(c, cip)),
        });
        const feeds = randomFeeds({ x: { dims: c.x } }, 5);
        let gy: number[] = [];
        const { y, grads } = await gradientsFor(
          feeds,
          (b, v) => b.op1('AveragePool', [v.x!], attrsOf(c, cip)),
          (dims) => {
            gy = Array.from({ length: dims.reduce((p, d) => p * d, 1) }, (_, i) =>
              Math.sin(1.3 * i + 0.5),
            );
            return gy;
          },
        );
        const yd = y.dims as [number, number, number, number];
        assertClose(
          grads.x!,
          averagePoolBackwardRef(c.x, c.geo, cip === 1, gy, yd),
          1e-5,
          1e-6,
          'dx',
        );
      });
    }
  }

  test('1-D, pads [2, 1], count_include_pad 0', async () => {
    await checkGradients({
      dtype: 'float32',
      eps: 1e-2,
      rtol: 1e-2,
      atol: 2e-3,
      inputs: { x: { dims: [2, 3, 9] } },
      build: (b, v) =>
        b.op1('AveragePool', [v.x!], { kernel_shape: [3], strides: [2], pads: [2, 1] }),
    });
  });

  test('hand-worked: a corner input of a padded 3x3 pool', async () => {
    // x 3x3, kernel 3, stride 1, pads 1: the 9 windows cover x[0,0] four times (outputs
    // (0,0), (0,1), (1,0), (1,1)). Without padding counted, those windows hold 4, 6, 6 and 9
    // inputs; with dy = 1, dx[0,0] = 1/4 + 1/6 + 1/6 + 1/9. With padding counted: 4/9.
    const feeds = { x: makeTensor('float32', [1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]) };
    const attrs = { kernel_shape: [3, 3], pads: [1, 1, 1, 1] };
    const ones = (d: number[]) => new Array<number>(d.reduce((p, x) => p * x, 1)).fill(1);
    const ex = await gradientsFor(
      feeds,
      (b, v) => b.op1('AveragePool', [v.x!], { ...attrs, count_include_pad: 0 }),
      ones,
    );
    assert.ok(Math.abs(ex.grads.x![0]! - (1 / 4 + 1 / 6 + 1 / 6 + 1 / 9)) < 1e-6);
    assert.ok(Math.abs(ex.grads.x![4]! - (4 / 4 + 4 / 6 + 1 / 9)) < 1e-6); // the centre: in all 9 windows
    const inc = await gradientsFor(
      feeds,
      (b, v) => b.op1('AveragePool', [v.x!], { ...attrs, count_include_pad: 1 }),
      ones,
    );
    assert.ok(Math.abs(inc.grads.x![0]! - 4 / 9) < 1e-6);
    assert.ok(Math.abs(inc.grads.x![4]! - 1) < 1e-6);
  });
});
