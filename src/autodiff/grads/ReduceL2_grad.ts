import type { GradRule } from '../types.js';
import { reducedAxes, unsqueezeAt } from './reduce.js';

/**
 * y = √(Σ over axes of x²) (axes attribute before opset 18, input from 18):
 * dx = x · dy / y, with dy / y computed on the reduced tensor and broadcast by the Mul.
 * Where y = 0 (all reduced elements zero) the gradient is 0, the subgradient PyTorch's
 * norm uses, instead of 0/0. With noop_with_empty_axes and no axes ONNX Runtime computes
 * y = |x|, for which the same formula gives sign(x) · dy.
 */
export const reduceL2Grad: GradRule = {
  opType: 'ReduceL2',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const ax = reducedAxes(ctx, b.opset >= 18);
    let y = ctx.O(0);
    let gy = ctx.GO(0)!;
    if (ax !== 'identity' && !ax.keepdims) {
      y = unsqueezeAt(b, y, ax.axes);
      gy = unsqueezeAt(b, gy, ax.axes);
    }
    // Where y = 0 every reduced x is 0, so dividing by 1 there instead of 0 gives
    // x · dy / 1 = 0 without forming 0/0.
    const isZero = b.op1('Equal', [y, b.scalar(0, y.dtype)]);
    const scale = b.div(gy, b.op1('Where', [isZero, b.scalar(1, y.dtype), y]));
    return [b.mul(x, scale)];
  },
};
