import { ONNX_DTYPE_CODE } from '../../onnx/dtype.js';
import type { GradRule } from '../types.js';

/**
 * y = xᵖ (p a constant or a tensor, broadcast; p may be of another numeric type):
 * dx = dy · p · x^(p−1);
 * dp = dy · y · ln x where x > 0, and 0 where x ≤ 0: there xᵖ is only defined for integer
 * p (or is 0 at x = 0), so it is not differentiable in p and ln x would give NaN.
 * The engine undoes broadcasting of x and p.
 */
export const powGrad: GradRule = {
  opType: 'Pow',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const p = ctx.I(1)!;
    const gy = ctx.GO(0)!;
    const dx = () => {
      const pc = p.dtype === x.dtype ? p : b.op1('Cast', [p], { to: ONNX_DTYPE_CODE[x.dtype] });
      return b.mul(gy, b.mul(pc, b.op1('Pow', [x, b.sub(pc, b.scalar(1, x.dtype))])));
    };
    const dp = () => {
      const zero = b.scalar(0, x.dtype);
      const g = b.op1('Where', [
        b.op1('Greater', [x, zero]),
        b.mul(gy, b.mul(ctx.O(0), b.log(x))),
        zero,
      ]);
      return g.dtype === p.dtype ? g : b.op1('Cast', [g], { to: ONNX_DTYPE_CODE[p.dtype] });
    };
    return [ctx.needsGrad(0) ? dx() : null, ctx.needsGrad(1) ? dp() : null];
  },
};
