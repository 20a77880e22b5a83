import type { GradRule } from '../types.js';
import { softmaxAxis } from './softmax-axis.js';

/**
 * y = softmax(x) over one axis (opset ≥ 13 semantics): dx = y ⊙ (dy − Σ_axis dy ⊙ y).
 */
export const softmaxGrad: GradRule = {
  opType: 'Softmax',
  grad: (ctx) => {
    const { b } = ctx;
    const axis = softmaxAxis(ctx);
    const y = ctx.O(0);
    const gy = ctx.GO(0)!;
    return [b.mul(y, b.sub(gy, b.reduceSum(b.mul(gy, y), [axis], true)))];
  },
};
