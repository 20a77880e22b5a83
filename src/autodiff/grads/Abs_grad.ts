import type { GradRule } from '../types.js';

/** y = |x|: dx = dy · sign(x) (0 at x = 0, as PyTorch). */
export const absGrad: GradRule = {
  opType: 'Abs',
  grad: (ctx) => [ctx.b.mul(ctx.GO(0)!, ctx.b.op1('Sign', [ctx.I(0)!]))],
};
