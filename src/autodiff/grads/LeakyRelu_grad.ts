import type { GradRule } from '../types.js';

/**
 * y = x for x > 0, αx otherwise (α: attribute `alpha`, default 0.01):
 * dx = dy where x > 0, α·dy elsewhere (slope α at x = 0, as PyTorch).
 */
export const leakyReluGrad: GradRule = {
  opType: 'LeakyRelu',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const gy = ctx.GO(0)!;
    const { alpha = 0.01 } = ctx.attrs<{ alpha: number }>();
    const positive = b.op1('Greater', [x, b.scalar(0, x.dtype)]);
    return [b.op1('Where', [positive, gy, b.mul(gy, b.scalar(alpha, x.dtype))])];
  },
};
