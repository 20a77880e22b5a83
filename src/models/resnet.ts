import type { LayerContext } from '../layers/context.js';
import { conv2d, convBn } from '../layers/conv.js';
import { batchNorm } from '../layers/norm.js';
import type { Value } from '../onnx/builder.js';
import { classifierHead } from './head.js';
import type { ModelDef } from './types.js';

export interface ResnetConfig {
  block: 'basic' | 'bottleneck';
  /** Blocks per stage (torchvision resnet18: [2,2,2,2]; resnet50: [3,4,6,3]). */
  layers: number[];
  /** Base width per stage (torchvision: [64,128,256,512]). */
  widths: number[];
  channels: number;
  imageSize: number;
  numClasses: number;
  /** 'imagenet': 7x7/2 conv + 3x3/2 max pool; 'small': 3x3/1 conv, no pool (28x28, 32x32 inputs). */
  stem: 'imagenet' | 'small';
  bnneck: boolean;
}

const EXPANSION = { basic: 1, bottleneck: 4 } as const;

/**
 * ResNet with torchvision's parameter names (`conv1`, `bn1`, `layer{s}.{i}.conv1`,
 * `.bn1`, ..., `.downsample.0/1`, `fc`). The feature is the global-average-pooled
 * output of the last stage.
 */
export function resnet(cfg: ResnetConfig, name = 'resnet'): ModelDef {
  const exp = EXPANSION[cfg.block];
  const featureDim = cfg.widths[cfg.widths.length - 1]! * exp;
  return {
    name,
    family: 'resnet',
    inputShape: [cfg.channels, cfg.imageSize, cfg.imageSize],
    numClasses: cfg.numClasses,
    featureDim,
    bnneck: cfg.bnneck,
    config: { ...cfg },
    build(ctx: LayerContext, input: Value) {
      const { b } = ctx;
      const stem0 = cfg.widths[0]!;
      let x: Value;
      if (cfg.stem === 'imagenet') {
        x = b.relu(convBn(ctx, input, 'conv1', 'bn1', cfg.channels, stem0, 7, 2));
        x = b.op1('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      } else {
        x = b.relu(convBn(ctx, input, 'conv1', 'bn1', cfg.channels, stem0, 3, 1));
      }
      let inC = stem0;
      cfg.layers.forEach((count, s) => {
        const width = cfg.widths[s]!;
        for (let i = 0; i < count; i++) {
          const stride = i === 0 && s > 0 ? 2 : 1;
          x = b.scope(`layer${s + 1}`, () =>
            b.scope(i, () =>
              cfg.block === 'basic'
                ? basicBlock(ctx, x, inC, width, stride)
                : bottleneck(ctx, x, inC, width, stride),
            ),
          );
          inC = width * exp;
        }
      });
      const pooled = b.flatten(b.op1('GlobalAveragePool', [x]), 1);
      return classifierHead(ctx, pooled, featureDim, cfg.numClasses, {
        bnneck: cfg.bnneck,
        name: 'fc',
      });
    },
  };
}

function shortcut(ctx: LayerContext, x: Value, inC: number, outC: number, stride: number): Value {
  if (stride === 1 && inC === outC) return x;
  return ctx.b.scope('downsample', () => {
    const y = conv2d(ctx, x, '0', inC, outC, 1, { stride, bias: false, init: 'kaiming-out' });
    return batchNorm(ctx, y, '1', outC);
  });
}

function basicBlock(
  ctx: LayerContext,
  x: Value,
  inC: number,
  width: number,
  stride: number,
): Value {
  const { b } = ctx;
  let y = b.relu(convBn(ctx, x, 'conv1', 'bn1', inC, width, 3, stride));
  y = convBn(ctx, y, 'conv2', 'bn2', width, width, 3, 1);
  return b.relu(b.add(y, shortcut(ctx, x, inC, width, stride)));
}

function bottleneck(
  ctx: LayerContext,
  x: Value,
  inC: number,
  width: number,
  stride: number,
): Value {
  const { b } = ctx;
  const outC = width * 4;
  let y = b.relu(convBn(ctx, x, 'conv1', 'bn1', inC, width, 1, 1));
  y = b.relu(convBn(ctx, y, 'conv2', 'bn2', width, width, 3, stride));
  y = convBn(ctx, y, 'conv3', 'bn3', width, outC, 1, 1);
  return b.relu(b.add(y, shortcut(ctx, x, inC, outC, stride)));
}
