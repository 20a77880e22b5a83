import type { GradRule } from '../types.js';

/**
 * y = xᵖ: dx = dy · p · x^(p−1); dp = dy · y · ln x (defined for x > 0).
 */
export const powGrad: GradRule = {
  opType: 'Pow',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const p = ctx.I(1)!;
    const gy = ctx.GO(0)!;
    const pc = p.dtype === x.dtype ? p : b.op1('Cast', [p], { to: x.dtype === 'float64' ? 11 : 1 });
    const dx = ctx.needsGrad(0)
      ? b.mul(gy, b.mul(pc, b.op1('Pow', [x, b.sub(pc, b.scalar(1, x.dtype))])))
      : null;
    const dp = ctx.needsGrad(1) ? b.mul(gy, b.mul(ctx.O(0), b.log(x))) : null;
    return [dx, dp];
  },
};
