import { ONNX_DTYPE_CODE } from '../../onnx/dtype.js';
import type { GradRule } from '../types.js';

/**
 * y = max(x, 0): dx = dy where x > 0, else 0 (the subgradient 0 at x = 0, as PyTorch).
 * Written dy · float(x > 0): in ONNX Runtime a Mul by the cast mask ran about 1.6x faster
 * than Where(x > 0, dy, 0) with its broadcast scalar branch (float32 [128, 65, 256], 2
 * threads, best of 40 runs; earlier measured 1.8x).
 */
export const reluGrad: GradRule = {
  opType: 'Relu',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const positive = b.op1('Greater', [x, b.scalar(0, x.dtype)]);
    return [b.mul(ctx.GO(0)!, b.op1('Cast', [positive], { to: ONNX_DTYPE_CODE[x.dtype] }))];
  },
};
