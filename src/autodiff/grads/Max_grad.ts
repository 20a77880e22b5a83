import type { Value } from '../../onnx/builder.js';
import { ONNX_DTYPE_CODE } from '../../onnx/dtype.js';
import type { GradContext, GradRule } from '../types.js';

/**
 * y = max/min of one or more inputs (broadcast): each input gets dy where it equals y.
 * Ties split dy equally among the tied inputs (Max(a, a) gives each a dy/2, so the total
 * reaching a is dy, the derivative of the identity). The engine undoes broadcasting.
 */
function selectGrad(ctx: GradContext): (Value | null)[] {
  const { b } = ctx;
  const y = ctx.O(0);
  const gy = ctx.GO(0)!;
  const to = ONNX_DTYPE_CODE[y.dtype];
  const masks: Value[] = [];
  for (let i = 0; i < ctx.inputCount; i++)
    masks.push(b.op1('Cast', [b.op1('Equal', [ctx.I(i)!, y])], { to }));
  const count = masks.length === 1 ? masks[0]! : b.op1('Sum', masks);
  const share = b.div(gy, count);
  return masks.map((m, i) => (ctx.needsGrad(i) ? b.mul(m, share) : null));
}

export const maxGrad: GradRule = { opType: 'Max', grad: selectGrad };
export const minGrad: GradRule = { opType: 'Min', grad: selectGrad };
