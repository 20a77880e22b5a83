import type { GradRule } from '../types.js';

/** y = a * b: da = dy * b, db = dy * a. */
export const mulGrad: GradRule = {
  opType: 'Mul',
  grad: (ctx) => {
    const { b } = ctx;
    const gy = ctx.GO(0)!;
    return [
      ctx.needsGrad(0) ? b.mul(gy, ctx.I(1)!) : null,
      ctx.needsGrad(1) ? b.mul(gy, ctx.I(0)!) : null,
    ];
  },
};
