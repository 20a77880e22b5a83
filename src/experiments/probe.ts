/**
 * Probes of frozen features (DDAE's protocol): a linear probe (softmax regression with L2
 * on standardised features) or an attention-pooling head, trained by the project's one
 * training loop on the training-set features and scored by acc@1 on the test set. Feature
 * sources: a diffusion U-Net's blocks at a noise step t, raw pixels, or a supervised
 * backbone's penultimate `feature` output. {@link probeSweep} trains a linear probe for
 * every (t, block) of a grid.
 */
import type { ImageDataset } from '../data/dataset.js';
import type { Schedule } from '../denoise/schedule.js';
import { FeatureExtractor, type FeatureMatrix } from '../diffusion/features.js';
import { modelFeatures } from '../diffusion/frechet.js';
import { evaluateModel } from '../eval/evaluate.js';
import type { ParamStore } from '../models/params.js';
import { attentionProbeDef, linearProbeDef } from '../models/probe-heads.js';
import type { ModelDef } from '../models/types.js';
import type { UNetDef } from '../models/unet.js';
import type { Model } from '../onnx/ir.js';
import { type EpochLog, trainSupervised } from '../train/loop.js';
import { DataError, UsageError } from '../util/errors.js';

/** How a probe is trained. */
export interface ProbeConfig {
  epochs: number;
  batchSize: number;
  /** Peak learning rate of the cosine schedule. */
  lr: number;
  /** L2 penalty on the weights (SGD: added to the gradient, so exactly L2) or AdamW's decay. */
  weightDecay: number;
  optimizer: 'sgd' | 'adamw';
  warmupEpochs: number;
  seed: number;
  threads?: number;
}

/**
 * Defaults of the linear probe: SGD with Nesterov momentum 0.9, batch 256, peak rate 0.1
 * on a cosine schedule over 15 epochs, L2 1e-4 on the weights (not the bias).
 */
export const LINEAR_PROBE: Omit<ProbeConfig, 'seed'> = {
  epochs: 15,
  batchSize: 256,
  lr: 0.1,
  weightDecay: 1e-4,
  optimizer: 'sgd',
  warmupEpochs: 0,
};

/** Defaults of the attention head: AdamW 1e-3, decay 0.05, 15 epochs, batch 256, warm-up 1. */
export const ATTENTION_PROBE: Omit<ProbeConfig, 'seed'> = {
  epochs: 15,
  batchSize: 256,
  lr: 1e-3,
  weightDecay: 0.05,
  optimizer: 'adamw',
  warmupEpochs: 1,
};

/** Features with their labels. */
export interface LabelledFeatures {
  features: FeatureMatrix;
  labels: Int32Array;
  numClasses: number;
}

/** What a probe reached. */
export interface ProbeResult {
  /** acc@1 on the test features, in [0, 1]. */
  acc1: number;
  acc5: number;
  testImages: number;
  /** Per-epoch training loss and throughput. */
  history: EpochLog[];
}

/**
 * Per-channel mean and std of features ([D] rows: per dimension; [C, g, g]: per channel
 * over positions), a std of 0 replaced by 1 so constant dimensions stay finite.
 */
export function featureNorm(f: FeatureMatrix): { mean: number[]; std: number[] } {
  const c = f.dims[0]!;
  const per = f.dims.slice(1).reduce((p, d) => p * d, 1);
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  for (let i = 0; i < f.n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const base = (i * c + ch) * per;
      for (let k = 0; k < per; k++) {
        const v = f.data[base + k]!;
        sum[ch]! += v;
        sq[ch]! += v * v;
      }
    }
  }
  const count = f.n * per;
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (s, ch) => {
    const v = s / count - mean[ch]! ** 2;
    return v > 1e-12 ? Math.sqrt(v) : 1;
  });
  return { mean, std };
}

/** Features as an image data set ([D, 1, 1] or [C, g, g] per sample) for the training loop. */
function asDataset(x: LabelledFeatures, name: string): ImageDataset {
  const { features: f } = x;
  if (x.labels.length !== f.n) {
    throw new DataError(`${name}: ${f.n} feature rows for ${x.labels.length} labels`);
  }
  const [c, h, w] = f.dims.length === 1 ? [f.dims[0]!, 1, 1] : (f.dims as [number, number, number]);
  return {
    name,
    size: f.n,
    channels: c,
    height: h,
    width: w,
    numClasses: x.numClasses,
    images: f.data,
    labels: x.labels,
  };
}

/**
 * Trains a probe on training features and scores it on test features.
 * @param opts.head - 'linear' (features [D]) or 'attention' (features [C, g, g])
 * @param opts.heads - attention heads (default 4)
 * @example
 * const r = await trainProbe({ train, test, head: 'linear', config: { ...LINEAR_PROBE, seed: 0 } });
 * console.log(r.acc1);
 */
export async function trainProbe(opts: {
  train: LabelledFeatures;
  test: LabelledFeatures;
  head: 'linear' | 'attention';
  config: ProbeConfig;
  heads?: number;
}): Promise<ProbeResult> {
  const { train, test, config: cfg } = opts;
  const tr = train.features;
  const te = test.features;
  if (tr.dims.join() !== te.dims.join()) {
    throw new DataError(`train features are [${tr.dims}], test features [${te.dims}]`);
  }
  const norm = featureNorm(tr);
  let def: ModelDef;
  if (opts.head === 'linear') {
    if (tr.dims.length !== 1) {
      throw new UsageError(`a linear probe takes feature vectors, got [${tr.dims}] per sample`);
    }
    def = linearProbeDef(tr.dims[0]!, train.numClasses, norm);
  } else {
    if (tr.dims.length !== 3) {
      throw new UsageError(`an attention probe takes [C, g, g] grids, got [${tr.dims}] per sample`);
    }
    def = attentionProbeDef(tr.dims[0]!, tr.dims[1]!, train.numClasses, opts.heads ?? 4, norm);
  }
  const res = await trainSupervised({
    def,
    train: asDataset(train, 'train-features'),
    config: {
      epochs: cfg.epochs,
      batchSize: cfg.batchSize,
      lr: cfg.lr,
      minLr: 0,
      warmupEpochs: cfg.warmupEpochs,
      weightDecay: cfg.weightDecay,
      optimizer: cfg.optimizer,
      momentum: 0.9,
      labelSmoothing: 0,
      seed: cfg.seed,
      threads: cfg.threads,
      evalEvery: 0,
    },
  });
  const ev = await evaluateModel(res.model, asDataset(test, 'test-features'), {
    task: 'classification',
    threads: cfg.threads,
  });
  return { acc1: ev.acc1, acc5: ev.acc5, testImages: ev.images, history: res.history };
}

/** Raw pixels as features ([C·H·W] per image): the pixel logistic-regression baseline. */
export function pixelFeatures(data: ImageDataset): FeatureMatrix {
  return { dims: [data.channels * data.height * data.width], n: data.size, data: data.images };
}

/**
 * A supervised backbone's penultimate features (its `feature` output) as probe features.
 * @param model - an evaluation graph of the project's backbones (pixels in [0, 1])
 */
export async function backboneFeatures(
  model: Model,
  data: ImageDataset,
  threads?: number,
): Promise<FeatureMatrix> {
  const f = await modelFeatures(model, data.images, [data.channels, data.height, data.width], {
    threads,
  });
  return { dims: [f.dim], n: f.n, data: f.data };
}

/** One cell of a sweep. */
export interface SweepCell {
  t: number;
  block: string;
  acc1: number;
}

/**
 * A linear probe for every (t, block): per t, one pass over the training and test images
 * extracts every block's mean-pooled features, then one probe per block is trained.
 * @param opts.def - the U-Net; opts.values - its (EMA) weights
 * @param opts.ts - noise steps (0 = clean input)
 * @param opts.blocks - blocks ({@link UNetDef.blocks})
 * @param opts.seed - seed of the noise and of the probes
 * @param opts.onCell - called after each probe
 */
export async function probeSweep(opts: {
  def: UNetDef;
  values: ParamStore;
  schedule: Schedule;
  train: ImageDataset;
  test: ImageDataset;
  ts: number[];
  blocks: string[];
  config: ProbeConfig;
  onCell?: (cell: SweepCell) => void;
  onStage?: (what: string) => void;
}): Promise<{ cells: SweepCell[]; best: SweepCell }> {
  const fx = await FeatureExtractor.create(
    opts.def,
    opts.values,
    opts.blocks,
    'mean',
    opts.schedule,
    { threads: opts.config.threads },
  );
  const cells: SweepCell[] = [];
  try {
    for (const t of opts.ts) {
      opts.onStage?.(`features at t=${t}`);
      const seed = opts.config.seed;
      const tr = await fx.extract(opts.train, t, { seed, label: 'train' });
      const te = await fx.extract(opts.test, t, { seed, label: 'test' });
      for (const block of opts.blocks) {
        const r = await trainProbe({
          train: {
            features: tr.get(block)!,
            labels: opts.train.labels,
            numClasses: opts.train.numClasses,
          },
          test: {
            features: te.get(block)!,
            labels: opts.test.labels,
            numClasses: opts.test.numClasses,
          },
          head: 'linear',
          config: opts.config,
        });
        const cell = { t, block, acc1: r.acc1 };
        cells.push(cell);
        opts.onCell?.(cell);
      }
    }
  } finally {
    await fx.release();
  }
  const best = cells.reduce((a, c) => (c.acc1 > a.acc1 ? c : a), cells[0]!);
  return { cells, best };
}
