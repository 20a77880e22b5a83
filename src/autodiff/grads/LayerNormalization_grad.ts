import type { Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';

interface LayerNormAttrs {
  axis: number;
  epsilon: number;
  stash_type: number;
}

/**
 * y = x̂ · scale + B, x̂ = (x − μ) / √(σ² + ε), with μ and the biased σ² taken over the
 * axes axis…r−1 (axis may be negative; scale and B broadcast over the leading axes).
 * With g = dy · scale and means over the normalised axes:
 *   dx = (g − mean(g) − x̂ · mean(g · x̂)) / √(σ² + ε),
 *   dscale = dy · x̂,  dB = dy  (the engine sums these over the broadcast leading axes).
 * μ and 1/√(σ²+ε) come from the forward's optional Mean / InvStdDev outputs when it has
 * them in x's dtype (float32), otherwise they are recomputed (two reductions).
 */
export const layerNormalizationGrad: GradRule = {
  opType: 'LayerNormalization',
  grad: (ctx) => {
    const { b, node } = ctx;
    const x = ctx.I(0)!;
    const gy = ctx.GO(0);
    if (!gy) return [null, null, null];
    const { axis = -1, epsilon = 1e-5 } = ctx.attrs<LayerNormAttrs>();
    const r = x.shape!.length;
    const a = axis < 0 ? axis + r : axis;
    const axes = Array.from({ length: r - a }, (_, i) => i + a);
    let mean: Value;
    let invStd: Value;
    let xc: Value;
    if (
      node.outputs[1] &&
      node.outputs[2] &&
      ctx.O(1).dtype === x.dtype &&
      ctx.O(2).dtype === x.dtype
    ) {
      mean = ctx.O(1);
      invStd = ctx.O(2);
      xc = b.sub(x, mean);
    } else {
      mean = b.reduceMean(x, axes);
      xc = b.sub(x, mean);
      const variance = b.reduceMean(b.mul(xc, xc), axes);
      invStd = b.op1('Reciprocal', [b.sqrt(b.add(variance, b.scalar(epsilon, x.dtype)))]);
    }
    let dx: Value | null = null;
    if (ctx.needsGrad(0)) {
      // With x̂ = x_c·s (s = 1/√(σ²+ε)): dx = s·g − s·mean(g) − x_c·s³·mean(g·x_c), the
      // per-row factors formed first so that x̂ is never materialised.
      const g = b.mul(gy, ctx.I(1)!);
      const c = b.neg(b.mul(invStd, b.reduceMean(g, axes)));
      const s3 = b.mul(invStd, b.mul(invStd, invStd));
      const a = b.neg(b.mul(s3, b.reduceMean(b.mul(g, xc), axes)));
      dx = b.add(b.mul(g, invStd), b.add(b.mul(xc, a), c));
    }
    const dScale = ctx.needsGrad(1) ? b.mul(gy, b.mul(xc, invStd)) : null;
    return [dx, dScale, ctx.needsGrad(2) && ctx.I(2) ? gy : null];
  },
};
