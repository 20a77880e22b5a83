// Tiny models and data for training-loop tests.
import type { ImageDataset } from '../../src/data/dataset.js';
import type { LayerContext } from '../../src/layers/context.js';
import { linear } from '../../src/layers/linear.js';
import { classifierHead } from '../../src/models/head.js';
import type { ModelDef } from '../../src/models/types.js';
import type { Value } from '../../src/onnx/builder.js';
import type { SupervisedConfig } from '../../src/train/loop.js';
import { Rng } from '../../src/util/rng.js';

/**
 * A tiny MLP on 8x8 images with one dropout mask fed as a graph input (`mask::drop`,
 * registered in ctx.dropoutMasks the way layers/dropout does), so the loop must draw it.
 */
export function maskedMlp(): ModelDef {
  return {
    name: 'masked-mlp',
    family: 'mlp',
    inputShape: [1, 8, 8],
    numClasses: 3,
    featureDim: 16,
    bnneck: false,
    config: {},
    build(ctx: LayerContext, input: Value) {
      const { b } = ctx;
      let h = b.relu(linear(ctx, b.flatten(input, 1), 'fc1', 64, 16));
      if (ctx.mode === 'train') {
        const mask = b.input('mask::drop', 'float32', ['N', 16]);
        ctx.dropoutMasks.set('mask::drop', { keep: 0.7, value: mask });
        h = b.mul(h, mask);
      }
      return classifierHead(ctx, h, 16, 3, { bnneck: false, name: 'head' });
    },
  };
}

/** 8x8 grey images of 3 classes: a bright quadrant per class plus noise. */
export function blobs(n: number, seed: number): ImageDataset {
  const rng = new Rng(seed);
  const images = new Float32Array(n * 64);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels[i] = c;
    for (let p = 0; p < 64; p++) {
      const [y, x] = [p >> 3, p & 7];
      const on = c === 0 ? y < 4 && x < 4 : c === 1 ? y >= 4 && x >= 4 : y < 4 && x >= 4;
      images[i * 64 + p] = (on ? 0.8 : 0.1) + 0.1 * rng.normal();
    }
  }
  return {
    name: 'blobs',
    size: n,
    channels: 1,
    height: 8,
    width: 8,
    numClasses: 3,
    images,
    labels,
  };
}

/**
 * The run of the kill tests: a masked MLP on 24 blob images, 3 steps per epoch, 2 epochs,
 * with random erasing and a dropout mask so that resumed runs must restore every stream.
 */
export const KILL_CONFIG: SupervisedConfig = {
  epochs: 2,
  batchSize: 8,
  lr: 2e-2,
  warmupEpochs: 0.5,
  seed: 7,
  augment: { erasing: 0.5 },
};

export function killModel(): ModelDef {
  return maskedMlp();
}

export function killData(): ImageDataset {
  return blobs(24, 5);
}
