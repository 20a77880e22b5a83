import type { GradRule } from '../types.js';

/**
 * y = max(0, min(1, αx + β)) (attributes `alpha` default 0.2, `beta` default 0.5):
 * dx = α·dy where 0 < y < 1 (the linear part), 0 where the output is clipped. The
 * subgradient at the two kinks is 0.
 */
export const hardSigmoidGrad: GradRule = {
  opType: 'HardSigmoid',
  grad: (ctx) => {
    const { b } = ctx;
    const y = ctx.O(0);
    const gy = ctx.GO(0)!;
    const { alpha = 0.2 } = ctx.attrs<{ alpha: number }>();
    const zero = b.scalar(0, y.dtype);
    const inside = b.op1('And', [
      b.op1('Greater', [y, zero]),
      b.op1('Less', [y, b.scalar(1, y.dtype)]),
    ]);
    return [b.op1('Where', [inside, b.mul(gy, b.scalar(alpha, y.dtype)), zero])];
  },
};
