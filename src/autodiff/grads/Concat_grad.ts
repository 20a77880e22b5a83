import { GradientError } from '../../errors.js';
import type { GradRule } from '../types.js';

/** y = concat(xs, axis): each input gets its slice of dy along the axis (sizes must be static). */
export const concatGrad: GradRule = {
  opType: 'Concat',
  grad: (ctx) => {
    const { b } = ctx;
    const gy = ctx.GO(0)!;
    const r = gy.shape!.length;
    const axis = ((ctx.attrs<{ axis: number }>().axis ?? 0) + r) % r;
    let start = 0;
    const out = [];
    for (let i = 0; i < ctx.inputCount; i++) {
      const d = ctx.I(i)!.shape![axis];
      if (typeof d !== 'number')
        throw new GradientError(
          `Concat node ${ctx.node.name}: input ${i} has a dynamic size on axis ${axis}`,
        );
      out.push(ctx.needsGrad(i) ? b.slice(gy, [start], [start + d], [axis]) : null);
      start += d;
    }
    return out;
  },
};
