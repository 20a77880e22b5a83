import type { GradRule } from '../types.js';

/** y = max(x, 0): dx = dy where x > 0, else 0 (the subgradient 0 at x = 0, as PyTorch). */
export const reluGrad: GradRule = {
  opType: 'Relu',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const zero = b.scalar(0, x.dtype);
    return [b.op1('Where', [b.op1('Greater', [x, zero]), ctx.GO(0)!, zero])];
  },
};
