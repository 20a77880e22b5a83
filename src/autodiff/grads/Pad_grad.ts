import { GradientError } from '../../util/errors.js';
import type { Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';

/**
 * y = pad(x, pads, c) in 'constant' mode: every element of y is either an element of x or
 * the constant c. dx = dy with the padding taken off, which is Pad(dy, -pads): a positive
 * pad becomes a crop and a negative pad (ONNX's crop) becomes zeros where x was cut off.
 * dc = Σ dy over the padded positions = Σ dy - Σ dx.
 * 'reflect', 'edge' and 'wrap' raise a GradientError naming the mode.
 */
export const padGrad: GradRule = {
  opType: 'Pad',
  grad: (ctx) => {
    const { b } = ctx;
    const mode = ctx.attrs<{ mode: string }>().mode ?? 'constant';
    if (mode !== 'constant') {
      throw new GradientError(
        `Pad node ${ctx.node.name}: no gradient for mode '${mode}' (only 'constant')`,
      );
    }
    const pads = ctx.I(1)!;
    const known = b.knownInts(pads);
    const negated =
      known && known.every((v) => typeof v === 'number')
        ? b.ints(known.map((v) => -v))
        : b.op1('Neg', [pads]);
    const gy = ctx.GO(0)!;
    const axes = ctx.I(3);
    const dx = b.op1('Pad', axes ? [gy, negated, null, axes] : [gy, negated]);
    let dc: Value | null = null;
    const c = ctx.I(2);
    if (c && ctx.needsGrad(2)) {
      const total = (v: Value) => b.op1('ReduceSum', [v], { keepdims: 0 });
      dc = b.sub(total(gy), total(dx));
      if (c.shape && c.shape.length > 0) dc = b.op1('Reshape', [dc, b.op1('Shape', [c])]);
    }
    return [dx, null, dc, null];
  },
};
