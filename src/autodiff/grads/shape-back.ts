import type { Value } from '../../onnx/builder.js';
import type { GradContext } from '../types.js';

/** dy reshaped back to the shape of input `i` (a static constant when known, else Shape(x)). */
export function reshapeBack(ctx: GradContext, i = 0): Value {
  const { b } = ctx;
  const x = ctx.I(i)!;
  const gy = ctx.GO(0)!;
  if (x.shape && x.shape.every((d) => typeof d === 'number'))
    return b.reshape(gy, x.shape as number[]);
  return b.op1('Reshape', [gy, b.op1('Shape', [x])]);
}
