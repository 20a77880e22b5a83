import { GradientError } from '../../errors.js';
import type { GradRule } from '../types.js';

/**
 * y = softmax(x) over one axis (opset ≥ 13 semantics): dx = y ⊙ (dy − Σ_axis dy ⊙ y).
 */
export const softmaxGrad: GradRule = {
  opType: 'Softmax',
  grad: (ctx) => {
    const { b } = ctx;
    if (b.opset < 13)
      throw new GradientError(
        `Softmax node ${ctx.node.name}: opset ${b.opset} semantics (input coerced to 2-D at ` +
          `axis) are not supported; only opset 13 and later`,
      );
    const y = ctx.O(0);
    const gy = ctx.GO(0)!;
    const r = y.shape!.length;
    const axis = ((ctx.attrs<{ axis: number }>().axis ?? -1) + r) % r;
    const s = b.reduceSum(b.mul(gy, y), [axis], true);
    return [b.mul(y, b.sub(gy, s))];
  },
};
