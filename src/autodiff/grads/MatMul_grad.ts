import type { Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';

/** Swaps the last two axes of a rank >= 2 value. */
function swapLast(ctx: Parameters<GradRule['grad']>[0], v: Value): Value {
  const r = v.shape!.length;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return ctx.b.transpose(v, perm);
}

/**
 * y = a @ b (numpy semantics). da = dy @ bᵀ, db = aᵀ @ dy over the last two axes; batch
 * broadcasting is undone by the engine. The common case of a batched activation times a
 * 2-D weight computes db as one large matmul over the flattened batch, (a₂)ᵀ dy₂,
 * instead of a batch of small products summed afterwards.
 */
export const matMulGrad: GradRule = {
  opType: 'MatMul',
  grad: (ctx) => {
    const { b } = ctx;
    let a = ctx.I(0)!;
    let w = ctx.I(1)!;
    let gy = ctx.GO(0)!;
    const ra = a.shape!.length;
    const rb = w.shape!.length;
    // Rank-1 operands are promoted as numpy does, then the promoted axis is dropped again.
    // (The column axis of b goes first so that a rank-0 dy of vector·vector becomes [1, 1].)
    if (rb === 1) {
      w = b.unsqueeze(w, [1]);
      gy = b.unsqueeze(gy, [-1]);
    }
    if (ra === 1) {
      a = b.unsqueeze(a, [0]);
      gy = b.unsqueeze(gy, [-2]);
    }
    let da: Value | null = null;
    let dw: Value | null = null;
    if (ctx.needsGrad(0)) {
      da = b.matmul(gy, swapLast(ctx, w));
      if (ra === 1) da = b.squeeze(da, [-2]);
    }
    if (ctx.needsGrad(1)) {
      const ar = a.shape!.length;
      if (w.shape!.length === 2 && ar > 2) {
        const k = a.shape![ar - 1] as number;
        const n = gy.shape![gy.shape!.length - 1] as number;
        const a2 = b.reshape(a, [-1, k]);
        const g2 = b.reshape(gy, [-1, n]);
        dw = b.gemm(a2, g2, null, { transA: 1 });
      } else {
        dw = b.matmul(swapLast(ctx, a), gy);
      }
      if (rb === 1) dw = b.squeeze(dw, [-1]);
    }
    return [da, dw];
  },
};
