import type { Init, Value } from '../onnx/builder.js';
import type { LayerContext } from './context.js';

export interface LinearOptions {
  bias?: boolean;
  /** 'torch': U(±1/sqrt(in)) for weight and bias (nn.Linear); 'trunc02': timm ViT (trunc normal 0.02, zero bias). */
  init?: 'torch' | 'trunc02' | 'zeros';
}

/**
 * A fully connected layer y = x Wᵀ + b with PyTorch's layout (`weight` [out, in], `bias`
 * [out]) under the current scope, computed as one Gemm(transB=1). Inputs of rank > 2 are
 * flattened to 2-D and restored around the Gemm (a view, no copy), so that the layer is a
 * single selectable Gemm whatever the input rank.
 * @param ctx - layer context
 * @param x - input [..., in]
 * @param name - scope name, e.g. 'fc1'
 * @param inF - input features
 * @param outF - output features
 */
export function linear(
  ctx: LayerContext,
  x: Value,
  name: string,
  inF: number,
  outF: number,
  opts: LinearOptions = {},
): Value {
  const { b } = ctx;
  const kind = opts.init ?? 'torch';
  const bound = 1 / Math.sqrt(inF);
  const wInit: Init =
    kind === 'trunc02'
      ? { kind: 'truncNormal', std: 0.02 }
      : kind === 'zeros'
        ? { kind: 'zeros' }
        : { kind: 'uniform', bound };
  const bInit: Init = kind === 'torch' ? { kind: 'uniform', bound } : { kind: 'zeros' };
  return b.scope(name, () => {
    const w = b.param('weight', [outF, inF], wInit);
    const bias = opts.bias === false ? null : b.param('bias', [outF], bInit);
    const shape = x.shape!;
    if (shape.length === 2) return b.gemm(x, w, bias, { transB: 1 });
    const lead = shape.slice(0, -1);
    const x2 = b.reshape(x, [-1, inF]);
    const y2 = b.gemm(x2, w, bias, { transB: 1 });
    // Restore the leading dims: static ones are kept, one symbolic (batch) dim becomes -1.
    const target = lead.map((d) => (typeof d === 'number' ? d : -1));
    if (target.filter((d) => d === -1).length > 1) {
      const dims = b.slice(b.op1('Shape', [x]), [0], [shape.length - 1], [0]);
      return b.op1('Reshape', [y2, b.concat([dims, b.ints([outF])], 0)]);
    }
    return b.reshape(y2, [...target, outF]);
  });
}
