import type { GradRule } from '../types.js';

/** y = transpose(x, perm): dx = transpose(dy, perm⁻¹). */
export const transposeGrad: GradRule = {
  opType: 'Transpose',
  grad: (ctx) => {
    const r = ctx.I(0)!.shape!.length;
    const perm = ctx.attrs<{ perm: number[] }>().perm ?? [...Array(r).keys()].reverse();
    const inv = new Array<number>(r);
    perm.forEach((p, i) => {
      inv[p] = i;
    });
    return [ctx.b.transpose(ctx.GO(0)!, inv)];
  },
};
