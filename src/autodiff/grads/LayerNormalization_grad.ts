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
    if (
      node.outputs[1] &&
      node.outputs[2] &&
      ctx.O(1).dtype === x.dtype &&
      ctx.O(2).dtype === x.dtype
    ) {
      mean = ctx.O(1);
      invStd = ctx.O(2);
    } else {
      mean = b.reduceMean(x, axes);
      const xc0 = b.sub(x, mean);
      invStd = b.op1('Reciprocal', [
        b.sqrt(b.add(b.reduceMean(b.mul(xc0, xc0), axes), b.scalar(epsilon, x.dtype))),
      ]);
    }
    const xhat = b.mul(b.sub(x, mean), invStd);
    let dx: Value | null = null;
    if (ctx.needsGrad(0)) {
      const g = b.mul(gy, ctx.I(1)!);
      const inner = b.add(b.reduceMean(g, axes), b.mul(xhat, b.reduceMean(b.mul(g, xhat), axes)));
      dx = b.mul(b.sub(g, inner), invStd);
    }
    return [
      dx,
      ctx.needsGrad(1) ? b.mul(gy, xhat) : null,
      ctx.needsGrad(2) && ctx.I(2) ? gy : null,
    ];
  },
};
