import type { GradRule } from '../types.js';
import { reducedAxes, unsqueezeAt } from './reduce.js';

/** y = Σ over axes of x (axes an input from opset 13, an attribute before): dx = dy expanded to x's shape. */
export const reduceSumGrad: GradRule = {
  opType: 'ReduceSum',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const ax = reducedAxes(ctx, b.opset >= 13);
    if (ax === 'identity') return [ctx.GO(0)];
    return [
      b.op1('Expand', [
        ax.keepdims ? ctx.GO(0)! : unsqueezeAt(b, ctx.GO(0)!, ax.axes),
        b.op1('Shape', [x]),
      ]),
    ];
  },
};
