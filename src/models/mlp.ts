import type { Value } from '../onnx/builder.js';
import type { LayerContext } from '../layers/context.js';
import { dropout } from '../layers/dropout.js';
import { linear } from '../layers/linear.js';
import { classifierHead } from './head.js';
import type { ModelDef } from './types.js';

export interface MlpConfig {
  channels: number;
  imageSize: number;
  /** Hidden widths (`fc1`, `fc2`, ...). */
  hidden: number[];
  numClasses: number;
  dropout: number;
  bnneck: boolean;
}

/**
 * A multi-layer perceptron on flattened pixels (`fc1`, `fc2`, ..., `head`): the smallest
 * backbone with Linear embedding layers, for quick experiments and tests. The feature is
 * the last hidden activation.
 */
export function mlp(cfg: MlpConfig, name = 'mlp'): ModelDef {
  const inF = cfg.channels * cfg.imageSize * cfg.imageSize;
  return {
    name,
    family: 'mlp',
    inputShape: [cfg.channels, cfg.imageSize, cfg.imageSize],
    numClasses: cfg.numClasses,
    featureDim: cfg.hidden.at(-1) ?? inF,
    bnneck: cfg.bnneck,
    config: { ...cfg },
    build(ctx: LayerContext, input: Value) {
      const { b } = ctx;
      let h = b.flatten(input, 1);
      let width = inF;
      cfg.hidden.forEach((out, i) => {
        h = dropout(
          ctx,
          b.relu(linear(ctx, h, `fc${i + 1}`, width, out)),
          `drop${i + 1}`,
          cfg.dropout,
        );
        width = out;
      });
      return classifierHead(ctx, h, width, cfg.numClasses, { bnneck: cfg.bnneck, name: 'head' });
    },
  };
}
