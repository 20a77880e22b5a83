import type { GradRule } from '../types.js';

/** y = cond ? a : b: da = dy where cond, db = dy elsewhere; cond gets none. */
export const whereGrad: GradRule = {
  opType: 'Where',
  grad: (ctx) => {
    const { b } = ctx;
    const c = ctx.I(0)!;
    const gy = ctx.GO(0)!;
    const zero = b.scalar(0, gy.dtype);
    return [
      null,
      ctx.needsGrad(1) ? b.op1('Where', [c, gy, zero]) : null,
      ctx.needsGrad(2) ? b.op1('Where', [c, zero, gy]) : null,
    ];
  },
};
