import type { GradRule } from '../types.js';
import { rankOf } from './shape-back.js';

/**
 * y = transpose(x, perm), i.e. y.dim[i] = x.dim[perm[i]]: dx = transpose(dy, perm⁻¹) with
 * perm⁻¹[perm[i]] = i. Without `perm` the axes are reversed (its own inverse).
 */
export const transposeGrad: GradRule = {
  opType: 'Transpose',
  grad: (ctx) => {
    const given = ctx.attrs<{ perm: number[] }>().perm;
    const perm = given ?? [...Array(rankOf(ctx)).keys()].reverse();
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => {
      inv[p] = i;
    });
    return [ctx.b.transpose(ctx.GO(0)!, inv)];
  },
};
