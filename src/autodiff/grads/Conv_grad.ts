import { GradientError } from '../../errors.js';
import type { Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';
import { resolveWindow, transposeGeometry } from './window.js';

interface ConvAttrs {
  auto_pad: string;
  dilations: number[];
  group: number;
  kernel_shape: number[];
  pads: number[];
  strides: number[];
}

/**
 * y = conv(x, w) + b for any number of spatial axes (1-D, 2-D, 3-D), with strides, pads,
 * dilations and groups (auto_pad NOTSET or VALID).
 *
 * - dx is the transposed convolution of dy with the same weight, strides, pads, dilations
 *   and group; output_padding restores the input positions the forward's floor dropped,
 *   so dx has x's shape exactly.
 * - dw[o, c, k] = Σ_{n, p} dy[n, o, p] · x_pad[n, c, s·p + d·k] is itself a convolution
 *   that correlates x with dy over the batch: with batch and channel axes swapped, x
 *   becomes the input [C, N, H, W] and dy the weight [O, N, Ho, Wo], run with the
 *   forward's dilations as strides, its strides as dilations and the same pads. The
 *   result [C, O, K', …] can be larger than the kernel (K' ≥ K when the forward dropped
 *   trailing positions) and is sliced, then transposed to [O, C, K, …]. With G groups the
 *   channels are split as (G, C/G) and (G, O/G) and the batch folded into each group's
 *   channels, so one grouped Conv computes every group's weight gradient at once.
 * - db = Σ dy over the batch and spatial axes.
 */
export const convGrad: GradRule = {
  opType: 'Conv',
  grad: (ctx) => {
    const { b, node } = ctx;
    const x = ctx.I(0)!;
    const w = ctx.I(1)!;
    const gy = ctx.GO(0)!;
    const a = ctx.attrs<ConvAttrs>();
    const ws = w.shape;
    if (!ws?.every((d) => typeof d === 'number')) {
      throw new GradientError(
        `Conv node '${node.name}': its gradient needs a weight of static shape, got [${ws ?? '?'}]`,
      );
    }
    const wdims = ws as number[];
    const kernel = a.kernel_shape?.length ? a.kernel_shape : wdims.slice(2);
    const win = resolveWindow(node, a, kernel, x, ctx.O(0));
    const r = win.rank;
    const group = a.group ?? 1;
    const spatialAxes = Array.from({ length: r }, (_, i) => i + 2);

    let dx: Value | null = null;
    if (ctx.needsGrad(0)) {
      const geo = transposeGeometry(win);
      dx = b.op1('ConvTranspose', [gy, w], {
        kernel_shape: kernel,
        strides: win.strides,
        dilations: win.dilations,
        pads: geo.pads,
        output_padding: geo.outputPadding,
        group,
      });
    }

    let dw: Value | null = null;
    if (ctx.needsGrad(1)) {
      const cout = wdims[0]!;
      const cg = wdims[1]!;
      let xt: Value;
      let gt: Value;
      if (group === 1) {
        const swap = [1, 0, ...spatialAxes];
        xt = b.transpose(x, swap);
        gt = b.transpose(gy, swap);
      } else {
        // x [N, G·Cg, S] → [Cg, G·N, S]: channel block g of the folded axis holds group g's
        // input over the whole batch. dy [N, G·Og, So] → [G·Og, N, So].
        const og = cout / group;
        const perm5 = [2, 1, 0, ...spatialAxes.map((i) => i + 1)];
        xt = b.reshape(b.transpose(b.reshape(x, [-1, group, cg, ...win.inSize]), perm5), [
          cg,
          -1,
          ...win.inSize,
        ]);
        const permG = [1, 2, 0, ...spatialAxes.map((i) => i + 1)];
        gt = b.reshape(b.transpose(b.reshape(gy, [-1, group, og, ...win.outSize]), permG), [
          cout,
          -1,
          ...win.outSize,
        ]);
      }
      let dwt = b.op1('Conv', [xt, gt], {
        strides: win.dilations,
        dilations: win.strides,
        pads: win.pads,
        group,
      });
      const got = dwt.shape?.slice(2);
      if (!got || got.some((d, i) => d !== kernel[i])) {
        dwt = b.slice(dwt, Array<number>(r).fill(0), kernel, spatialAxes);
      }
      dw = b.transpose(dwt, [1, 0, ...spatialAxes]);
    }

    let db: Value | null = null;
    if (ctx.needsGrad(2) && ctx.I(2)) db = b.reduceSum(gy, [0, ...spatialAxes], false);
    return [dx, dw, db];
  },
};
