import type { GradRule } from '../types.js';
import { reducedAxes, unsqueezeAt } from './reduce.js';

/**
 * y = Σ over axes of x² (axes attribute before opset 18, input from 18): dx = 2x · dy,
 * with dy (kept dims) broadcast over the reduced axes by the Mul itself. With
 * noop_with_empty_axes and no axes ONNX Runtime squares without reducing (y = x²), and
 * the same formula holds with dy already of x's shape.
 */
export const reduceSumSquareGrad: GradRule = {
  opType: 'ReduceSumSquare',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const ax = reducedAxes(ctx, b.opset >= 18);
    let gy = ctx.GO(0)!;
    if (ax !== 'identity' && !ax.keepdims) gy = unsqueezeAt(b, gy, ax.axes);
    // The factor 2 goes on the (small) reduced gradient, not on the full-size tensor.
    return [b.mul(x, b.mul(gy, b.scalar(2, gy.dtype)))];
  },
};
