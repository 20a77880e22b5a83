import type { LayerContext } from '../layers/context.js';
import { linear } from '../layers/linear.js';
import { batchNorm } from '../layers/norm.js';
import type { Value } from '../onnx/builder.js';

/**
 * The classification head, optionally behind a BNNeck (TransReID / "Bag of Tricks"):
 * the pooled feature goes through BatchNorm1d with a frozen zero bias (`bottleneck`) and
 * a bias-free classifier; the retrieval feature is the normalised one.
 */
export function classifierHead(
  ctx: LayerContext,
  feature: Value,
  dim: number,
  numClasses: number,
  opts: { bnneck: boolean; name: string; init?: 'torch' | 'trunc02' },
): { logits: Value; feature: Value; preNeckFeature: Value } {
  if (!opts.bnneck) {
    return {
      logits: linear(ctx, feature, opts.name, dim, numClasses, { init: opts.init }),
      feature,
      preNeckFeature: feature,
    };
  }
  const bn = batchNorm(ctx, feature, 'bottleneck', dim, { frozenBias: true });
  const logits = linear(ctx, bn, opts.name, dim, numClasses, { bias: false, init: opts.init });
  return { logits, feature: bn, preNeckFeature: feature };
}
