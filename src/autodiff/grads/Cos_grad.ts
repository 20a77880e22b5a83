import type { GradRule } from '../types.js';

/** y = cos x: dx = −dy · sin x. */
export const cosGrad: GradRule = {
  opType: 'Cos',
  grad: (ctx) => [ctx.b.neg(ctx.b.mul(ctx.GO(0)!, ctx.b.op1('Sin', [ctx.I(0)!])))],
};
