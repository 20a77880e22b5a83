import type { Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';

interface GemmAttrs {
  alpha: number;
  beta: number;
  transA: number;
  transB: number;
}

/**
 * y = alpha · A' B' + beta · C with A' = transA ? Aᵀ : A (same for B). Each gradient is
 * one Gemm whose transpose flags absorb the transposes:
 * dA' = alpha · dy B'ᵀ, dB' = alpha · A'ᵀ dy, dC = beta · dy (broadcast undone by the engine).
 */
export const gemmGrad: GradRule = {
  opType: 'Gemm',
  grad: (ctx) => {
    const { b } = ctx;
    const { alpha = 1, beta = 1, transA = 0, transB = 0 } = ctx.attrs<GemmAttrs>();
    const A = ctx.I(0)!;
    const B = ctx.I(1)!;
    const gy = ctx.GO(0)!;
    let dA: Value | null = null;
    let dB: Value | null = null;
    let dC: Value | null = null;
    if (ctx.needsGrad(0)) {
      dA = transA
        ? b.gemm(B, gy, null, { transA: transB, transB: 1, alpha })
        : b.gemm(gy, B, null, { transB: transB ? 0 : 1, alpha });
    }
    if (ctx.needsGrad(1)) {
      dB = transB
        ? b.gemm(gy, A, null, { transA: 1, transB: transA, alpha })
        : b.gemm(A, gy, null, { transA: transA ? 0 : 1, alpha });
    }
    if (ctx.needsGrad(2) && ctx.I(2)) {
      dC = beta === 1 ? gy : b.mul(gy, b.scalar(beta, gy.dtype));
    }
    return [dA, dB, dC];
  },
};
