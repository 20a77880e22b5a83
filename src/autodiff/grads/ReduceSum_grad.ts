import type { GradRule } from '../types.js';
import { reducedAxes } from './reduce.js';

/** y = Σ over axes of x (axes as input, opset ≥ 13): dx = expand(dy) to x's shape. */
export const reduceSumGrad: GradRule = {
  opType: 'ReduceSum',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const ax = reducedAxes(ctx, true);
    if (ax === 'identity') return [ctx.GO(0)];
    return [
      b.op1('Expand', [
        ax.keepdims ? ctx.GO(0)! : b.unsqueeze(ctx.GO(0)!, ax.axes),
        b.op1('Shape', [x]),
      ]),
    ];
  },
};
