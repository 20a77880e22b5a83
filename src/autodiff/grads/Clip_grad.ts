import type { Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';

/**
 * y = min(max(x, lo), hi), bounds optional (inputs 1 and 2 from opset 11, attributes `min`
 * and `max` before): dx = dy where lo ≤ x ≤ hi (inclusive at the bounds, as PyTorch's
 * clamp), 0 outside. Bounds that are themselves differentiated get dy where they bind:
 * dlo = dy where x < lo, dhi = dy where x > hi (this assumes lo ≤ hi).
 */
export const clipGrad: GradRule = {
  opType: 'Clip',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const gy = ctx.GO(0)!;
    let lo: Value | null = null;
    let hi: Value | null = null;
    if (b.opset >= 11) {
      lo = ctx.I(1);
      hi = ctx.I(2);
    } else {
      const a = ctx.attrs<{ min: number; max: number }>();
      if (a.min !== undefined) lo = b.scalar(a.min, x.dtype);
      if (a.max !== undefined) hi = b.scalar(a.max, x.dtype);
    }
    if (!lo && !hi) return [gy];
    const zero = b.scalar(0, gy.dtype);
    // Less/Greater/Or rather than GreaterOrEqual/And: valid at every opset Clip has.
    const belowLo = lo && b.op1('Less', [x, lo]);
    const aboveHi = hi && b.op1('Greater', [x, hi]);
    const outside = belowLo && aboveHi ? b.op1('Or', [belowLo, aboveHi]) : (belowLo ?? aboveHi)!;
    const dx = ctx.needsGrad(0) ? b.op1('Where', [outside, zero, gy]) : null;
    const dlo = belowLo && ctx.needsGrad(1) ? b.op1('Where', [belowLo, gy, zero]) : null;
    const dhi = aboveHi && ctx.needsGrad(2) ? b.op1('Where', [aboveHi, gy, zero]) : null;
    return [dx, dlo, dhi];
  },
};
