import { isFloat, ONNX_DTYPE_CODE } from '../../onnx/dtype.js';
import type { GradRule } from '../types.js';

/** Float to float: the gradient cast back to the input's dtype; through integers: none. */
export const castGrad: GradRule = {
  opType: 'Cast',
  grad: (ctx) => {
    const x = ctx.I(0)!;
    if (!isFloat(x.dtype) || !isFloat(ctx.O(0).dtype)) return [null];
    return [ctx.b.op1('Cast', [ctx.GO(0)!], { to: ONNX_DTYPE_CODE[x.dtype] })];
  },
};
