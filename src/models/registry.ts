import { UsageError } from '../util/errors.js';
import { layerContext } from '../layers/context.js';
import { GraphBuilder } from '../onnx/builder.js';
import { float32 } from '../onnx/tensor.js';
import { mlp } from './mlp.js';
import { resnet } from './resnet.js';
import {
  type BackboneGraph,
  FEATURE_NAME,
  INPUT_NAME,
  LOGITS_NAME,
  type ModelDef,
} from './types.js';
import { unet, type UNetDef } from './unet.js';
import { vit } from './vit.js';

export interface PresetOptions {
  numClasses?: number;
  bnneck?: boolean;
  dropout?: number;
}

type Preset = (o: PresetOptions) => ModelDef;

/** Fashion-MNIST pixel statistics (training set) and ImageNet's. */
const FMNIST_NORM = { mean: [0.286], std: [0.353] };
const IMAGENET_NORM = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** Input normalisation of each preset (built into its graph); micro presets have none. */
const PRESET_NORM: Record<string, ModelDef['normalize']> = {
  'vit-tiny-fmnist': FMNIST_NORM,
  'resnet-tiny-fmnist': FMNIST_NORM,
  'mlp-fmnist': FMNIST_NORM,
  'vit-s16': IMAGENET_NORM,
  'vit-b16': IMAGENET_NORM,
  resnet18: IMAGENET_NORM,
  resnet50: IMAGENET_NORM,
};

/** Model presets by name, like timm's registered variants. */
const PRESETS: Record<string, Preset> = {
  'vit-tiny-fmnist': (o) =>
    vit(
      {
        imageSize: 28,
        channels: 1,
        patch: 4,
        dim: 128,
        depth: 6,
        heads: 4,
        mlpRatio: 2,
        numClasses: o.numClasses ?? 10,
        dropout: o.dropout ?? 0,
        eps: 1e-6,
        bnneck: o.bnneck ?? false,
      },
      'vit-tiny-fmnist',
    ),
  'vit-micro': (o) =>
    vit(
      {
        imageSize: 8,
        channels: 1,
        patch: 4,
        dim: 16,
        depth: 2,
        heads: 2,
        mlpRatio: 2,
        numClasses: o.numClasses ?? 3,
        dropout: o.dropout ?? 0,
        eps: 1e-6,
        bnneck: o.bnneck ?? false,
      },
      'vit-micro',
    ),
  'vit-s16': (o) =>
    vit(
      {
        imageSize: 224,
        channels: 3,
        patch: 16,
        dim: 384,
        depth: 12,
        heads: 6,
        mlpRatio: 4,
        numClasses: o.numClasses ?? 1000,
        dropout: o.dropout ?? 0,
        eps: 1e-6,
        bnneck: o.bnneck ?? false,
      },
      'vit-s16',
    ),
  'vit-b16': (o) =>
    vit(
      {
        imageSize: 224,
        channels: 3,
        patch: 16,
        dim: 768,
        depth: 12,
        heads: 12,
        mlpRatio: 4,
        numClasses: o.numClasses ?? 1000,
        dropout: o.dropout ?? 0,
        eps: 1e-6,
        bnneck: o.bnneck ?? false,
      },
      'vit-b16',
    ),
  'resnet-tiny-fmnist': (o) =>
    resnet(
      {
        block: 'basic',
        layers: [1, 1, 1],
        widths: [32, 64, 128],
        channels: 1,
        imageSize: 28,
        numClasses: o.numClasses ?? 10,
        stem: 'small',
        bnneck: o.bnneck ?? false,
      },
      'resnet-tiny-fmnist',
    ),
  'mlp-fmnist': (o) =>
    mlp(
      {
        channels: 1,
        imageSize: 28,
        hidden: [256, 128],
        numClasses: o.numClasses ?? 10,
        dropout: o.dropout ?? 0,
        bnneck: o.bnneck ?? false,
      },
      'mlp-fmnist',
    ),
  'resnet-micro': (o) =>
    resnet(
      {
        block: 'basic',
        layers: [1, 1],
        widths: [4, 8],
        channels: 1,
        imageSize: 8,
        numClasses: o.numClasses ?? 3,
        stem: 'small',
        bnneck: o.bnneck ?? false,
      },
      'resnet-micro',
    ),
  resnet18: (o) =>
    resnet(
      {
        block: 'basic',
        layers: [2, 2, 2, 2],
        widths: [64, 128, 256, 512],
        channels: 3,
        imageSize: 224,
        numClasses: o.numClasses ?? 1000,
        stem: 'imagenet',
        bnneck: o.bnneck ?? false,
      },
      'resnet18',
    ),
  resnet50: (o) =>
    resnet(
      {
        block: 'bottleneck',
        layers: [3, 4, 6, 3],
        widths: [64, 128, 256, 512],
        channels: 3,
        imageSize: 224,
        numClasses: o.numClasses ?? 1000,
        stem: 'imagenet',
        bnneck: o.bnneck ?? false,
      },
      'resnet50',
    ),
};

/**
 * Denoising U-Net presets (DDPM). `ddpm-unet-fmnist`: 28x28x1, widths 32/64/128 at
 * 28/14/7, one residual block per level, self-attention at 7x7 (and in the middle),
 * GroupNorm with 8 groups. `ddpm-unet-micro` (8x8) and `ddpm-unet-fmnist-micro` (28x28,
 * widths 8/16): small ones for tests and smoke runs.
 */
const DIFFUSION_PRESETS: Record<string, () => UNetDef> = {
  'ddpm-unet-fmnist': () =>
    unet(
      {
        imageSize: 28,
        channels: 1,
        widths: [32, 64, 128],
        numRes: 1,
        attnLevels: [2],
        groups: 8,
        heads: 4,
        timeDim: 32,
        dropout: 0,
      },
      'ddpm-unet-fmnist',
    ),
  'ddpm-unet-micro': () =>
    unet(
      {
        imageSize: 8,
        channels: 1,
        widths: [4, 8],
        numRes: 1,
        attnLevels: [1],
        groups: 2,
        heads: 2,
        timeDim: 8,
        dropout: 0,
      },
      'ddpm-unet-micro',
    ),
  'ddpm-unet-fmnist-micro': () =>
    unet(
      {
        imageSize: 28,
        channels: 1,
        widths: [8, 16],
        numRes: 1,
        attnLevels: [1],
        groups: 4,
        heads: 2,
        timeDim: 8,
        dropout: 0,
      },
      'ddpm-unet-fmnist-micro',
    ),
};

/** Names of the diffusion (U-Net) presets. */
export function diffusionPresetNames(): string[] {
  return Object.keys(DIFFUSION_PRESETS);
}

/** Whether `name` is a diffusion (U-Net) preset. */
export function isDiffusionPreset(name: string): boolean {
  return Object.hasOwn(DIFFUSION_PRESETS, name);
}

/**
 * A denoising U-Net by preset name.
 * @example
 * const def = getDiffusionPreset('ddpm-unet-fmnist');
 */
export function getDiffusionPreset(name: string): UNetDef {
  const p = DIFFUSION_PRESETS[name];
  if (!p) {
    throw new UsageError(
      `unknown diffusion preset '${name}' (presets: ${diffusionPresetNames().join(', ')})`,
    );
  }
  return p();
}

/** Names of every preset. */
export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/**
 * A model definition by preset name.
 * @example
 * const def = getPreset('vit-tiny-fmnist');
 */
export function getPreset(name: string, opts: PresetOptions = {}): ModelDef {
  const p = PRESETS[name];
  if (!p)
    throw new UsageError(`unknown model preset '${name}' (presets: ${presetNames().join(', ')})`);
  const def = p(opts);
  const normalize = PRESET_NORM[name];
  return normalize ? { ...def, normalize } : def;
}

/**
 * Builds a backbone's graph for training or evaluation. The evaluation graph has the
 * outputs `logits` and `feature`; a training graph leaves outputs to the caller, which
 * adds its loss on the same builder. Parameter values depend only on `seed` and the
 * parameter name, so both modes start from identical weights.
 */
export function buildBackbone(def: ModelDef, mode: 'train' | 'eval', seed = 0): BackboneGraph {
  const b = new GraphBuilder({ name: def.name, seed });
  const ctx = layerContext(b, mode);
  const input = b.input(INPUT_NAME, 'float32', ['N', ...def.inputShape]);
  let x = input;
  if (def.normalize) {
    const c = def.inputShape[0];
    const mean = b.constant(float32([1, c, 1, 1], def.normalize.mean), 'input_mean');
    const invStd = b.constant(
      float32(
        [1, c, 1, 1],
        def.normalize.std.map((s) => 1 / s),
      ),
      'input_inv_std',
    );
    x = b.mul(b.sub(input, mean), invStd);
  }
  const { logits, feature, preNeckFeature } = def.build(ctx, x);
  if (mode === 'eval') {
    b.output(logits, LOGITS_NAME);
    b.output(feature, FEATURE_NAME);
  }
  return { b, ctx, input, logits, feature, preNeckFeature };
}
