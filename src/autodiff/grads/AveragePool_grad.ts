import { GradientError } from '../../util/errors.js';
import type { Value } from '../../onnx/builder.js';
import { makeTensor } from '../../onnx/tensor.js';
import type { GradRule } from '../types.js';
import { resolveWindow, transposeGeometry, type Window } from './window.js';

interface AveragePoolAttrs {
  auto_pad: string;
  ceil_mode: number;
  count_include_pad: number;
  dilations: number[];
  kernel_shape: number[];
  pads: number[];
  strides: number[];
}

/**
 * y[p] = (1 / div[p]) · Σ_{i ∈ window p, inside x} x[i], so dx[i] = Σ_{p ∋ i} dy[p] / div[p]:
 * scale dy by 1/div, then one transposed convolution with an all-ones kernel spreads
 * every window's share back over its input positions (padding positions are cropped by
 * the ConvTranspose pads). The channels are folded into the batch so that a single
 * one-channel kernel serves every channel.
 *
 * The divisor is the number of window elements inside x (count_include_pad = 0), or the
 * window size clipped to the padded input (count_include_pad = 1; smaller than the kernel
 * only where a ceil_mode window overhangs). The second case is taken from ONNX Runtime
 * itself: AveragePool of a constant all-ones image equals valid[p] / div[p], so
 * 1/div = AveragePool(ones) / valid, with valid[p] (in-bounds count, a build-time
 * constant). ONNX Runtime folds it to a constant at session creation, and the gradient
 * matches the forward's divisor exactly, whatever rounding of windows it uses.
 */
export const averagePoolGrad: GradRule = {
  opType: 'AveragePool',
  grad: (ctx) => {
    const { b, node } = ctx;
    const x = ctx.I(0)!;
    const gy = ctx.GO(0);
    if (!gy) return [null];
    const a = ctx.attrs<AveragePoolAttrs>();
    if (!a.kernel_shape?.length)
      throw new GradientError(`AveragePool node '${node.name}' has no kernel_shape`);
    const win = resolveWindow(node, a, a.kernel_shape, x, ctx.O(0));
    const valid = validCounts(win);
    let scale: Value;
    if (a.count_include_pad) {
      const ones = b.constant(
        makeTensor(x.dtype, [1, 1, ...win.inSize], new Array(numel(win.inSize)).fill(1)),
        'ones',
      );
      const frac = b.op1('AveragePool', [ones], {
        kernel_shape: win.kernel,
        strides: win.strides,
        pads: win.pads,
        ceil_mode: a.ceil_mode ?? 0,
        count_include_pad: 1,
        ...(a.dilations?.length ? { dilations: win.dilations } : {}),
      });
      const inv = valid.map((v) => 1 / Math.max(v, 1));
      scale = b.mul(
        frac,
        b.constant(makeTensor(x.dtype, [1, 1, ...win.outSize], inv), 'inv_count'),
      );
    } else {
      // Windows entirely in the padding (possible with ceil_mode) output 0 and pass nothing.
      const inv = valid.map((v) => (v > 0 ? 1 / v : 0));
      scale = b.constant(makeTensor(x.dtype, [1, 1, ...win.outSize], inv), 'inv_count');
    }
    const folded = b.reshape(b.mul(gy, scale), [-1, 1, ...win.outSize]);
    const geo = transposeGeometry(win);
    const kernel = b.constant(
      makeTensor(x.dtype, [1, 1, ...win.kernel], new Array(numel(win.kernel)).fill(1)),
      'ones',
    );
    const dxf = b.op1('ConvTranspose', [folded, kernel], {
      kernel_shape: win.kernel,
      strides: win.strides,
      dilations: win.dilations,
      pads: geo.pads,
      output_padding: geo.outputPadding,
    });
    const c = x.shape![1];
    const dx =
      typeof c === 'number'
        ? b.reshape(dxf, [-1, c, ...win.inSize])
        : b.op1('Reshape', [dxf, b.op1('Shape', [x])]);
    return [dx];
  },
};

function numel(dims: number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

/**
 * Number of window elements inside the (unpadded) input for every output position,
 * row-major over the output's spatial axes. Windows are products of per-axis ranges, so
 * the count is the product of per-axis counts.
 */
function validCounts(w: Window): number[] {
  const perAxis = w.outSize.map((out, i) =>
    Array.from({ length: out }, (_, p) => {
      const start = p * w.strides[i]! - w.pads[i]!;
      let n = 0;
      for (let k = 0; k < w.kernel[i]!; k++) {
        const pos = start + k * w.dilations[i]!;
        if (pos >= 0 && pos < w.inSize[i]!) n++;
      }
      return n;
    }),
  );
  let counts = [1];
  for (const axis of perAxis) counts = counts.flatMap((c) => axis.map((v) => c * v));
  return counts;
}
