import type { GradRule } from '../types.js';

/**
 * y = x for x > 0, α(eˣ − 1) otherwise (α: attribute `alpha`, default 1):
 * dx = dy where x > 0, dy · (y + α) elsewhere, since d/dx α(eˣ − 1) = αeˣ = y + α.
 */
export const eluGrad: GradRule = {
  opType: 'Elu',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const y = ctx.O(0);
    const gy = ctx.GO(0)!;
    const { alpha = 1 } = ctx.attrs<{ alpha: number }>();
    const positive = b.op1('Greater', [x, b.scalar(0, x.dtype)]);
    const negSide = b.mul(gy, b.add(y, b.scalar(alpha, y.dtype)));
    return [b.op1('Where', [positive, gy, negSide])];
  },
};
