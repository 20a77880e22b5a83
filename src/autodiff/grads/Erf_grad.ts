import type { GradRule } from '../types.js';

/** y = erf x: dx = dy · (2/√π) e^(−x²). */
export const erfGrad: GradRule = {
  opType: 'Erf',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    // (2/√π) e^(−x²) as one Exp of (ln(2/√π) − x²): one elementwise pass fewer.
    const e = b.exp(b.sub(b.scalar(Math.log(2 / Math.sqrt(Math.PI)), x.dtype), b.mul(x, x)));
    return [b.mul(ctx.GO(0)!, e)];
  },
};
