import type { GradRule } from '../types.js';

/** y = a / b: da = dy / b, db = -dy * y / b (reusing the forward output). */
export const divGrad: GradRule = {
  opType: 'Div',
  grad: (ctx) => {
    const { b } = ctx;
    const gy = ctx.GO(0)!;
    const gyOverB = b.div(gy, ctx.I(1)!);
    return [
      ctx.needsGrad(0) ? gyOverB : null,
      ctx.needsGrad(1) ? b.neg(b.mul(gyOverB, ctx.O(0))) : null,
    ];
  },
};
