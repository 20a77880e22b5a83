import type { GradRule } from '../types.js';
import { rankOf, zerosLike } from './shape-back.js';

/**
 * (y₀, y₁, …) = split(x, axis): dx = concat(dy₀, dy₁, …; axis), with zeros standing in for
 * the outputs that no gradient reaches.
 */
export const splitGrad: GradRule = {
  opType: 'Split',
  grad: (ctx) => {
    const r = rankOf(ctx);
    const a0 = ctx.attrs<{ axis: number }>().axis ?? 0;
    const axis = a0 < 0 ? a0 + r : a0;
    const parts = ctx.node.outputs.map((_, i) => ctx.GO(i) ?? zerosLike(ctx, ctx.O(i)));
    const dx = parts.length === 1 ? parts[0]! : ctx.b.concat(parts, axis);
    return [dx, null];
  },
};
