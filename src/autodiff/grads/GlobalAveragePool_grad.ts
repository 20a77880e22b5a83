import type { Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';

/**
 * y[n, c] = mean of x[n, c, …] over the spatial axes: dx = expand(dy, shape(x)) / (H·W·…).
 * The count is a constant when the spatial sizes are static, else read from Shape(x).
 */
export const globalAveragePoolGrad: GradRule = {
  opType: 'GlobalAveragePool',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const gy = ctx.GO(0);
    if (!gy) return [null];
    const shape = b.op1('Shape', [x]);
    const spatial = x.shape!.slice(2);
    let inv: Value;
    if (spatial.every((d) => typeof d === 'number')) {
      inv = b.scalar(1 / spatial.reduce((p, d) => p * d, 1), x.dtype);
    } else {
      const n = b.op1('ReduceProd', [b.slice(shape, [2], [Number.MAX_SAFE_INTEGER], [0])], {
        keepdims: 0,
      });
      inv = b.op1('Reciprocal', [b.op1('Cast', [n], { to: x.dtype === 'float64' ? 11 : 1 })]);
    }
    return [b.op1('Expand', [b.mul(gy, inv), shape])];
  },
};
