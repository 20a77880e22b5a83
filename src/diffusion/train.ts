/**
 * DDPM pretraining: the epsilon-prediction objective as one phase of the project's
 * training loop ({@link runTraining}), on unlabelled images, with an EMA of the weights
 * updated after every step and kept with the checkpoints (tensor set `ema`).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gatherBatch, type ImageDataset } from '../data/dataset.js';
import { epochBatches } from '../data/samplers.js';
import { dropoutFeeds } from '../layers/dropout.js';
import { ParamStore } from '../models/params.js';
import type { UNetDef } from '../models/unet.js';
import { CHECKPOINT_DIR } from '../train/checkpoint.js';
import type { ComputeRecord } from '../train/compute.js';
import { Ema } from '../train/ema.js';
import { graphObjective } from '../train/objective.js';
import type { SupervisedConfig } from '../train/loop.js';
import { AdamW, defaultDecayGroups } from '../train/optim.js';
import { type EpochSummary, runTraining, type StepInfo } from '../train/run.js';
import { cosineWithWarmup } from '../train/schedule.js';
import { separateStreams } from '../train/streams.js';
import { UsageError } from '../util/errors.js';
import { checkRange } from '../util/ranges.js';
import { ddpmFeeds, ddpmTrainingGraph } from './objective.js';
import { ddpmSchedule } from './schedule.js';

/**
 * Settings of a DDPM run: the supervised loop's optimisation settings (AdamW with peak
 * `lr` after the warm-up, then cosine to `minLr`; weight decay on weights only, DDPM used
 * none; global gradient-norm clip, DDPM's 1), plus the EMA and the number of steps.
 */
export interface DdpmConfig extends Pick<
  SupervisedConfig,
  | 'epochs'
  | 'batchSize'
  | 'lr'
  | 'minLr'
  | 'warmupEpochs'
  | 'weightDecay'
  | 'clipNorm'
  | 'seed'
  | 'threads'
> {
  /** Largest EMA decay (warmed up as (1 + k) / (10 + k)). */
  emaDecay?: number;
  /** Diffusion steps T. */
  timesteps?: number;
}

/**
 * The hyper-parameters of a DDPM run with every default filled in (a resume must match).
 * Defaults: warm-up 0.2 epochs, min rate 1e-5, no weight decay, clip 1, EMA 0.999, T 1000.
 */
export function ddpmHyper(cfg: DdpmConfig): Record<string, unknown> {
  return {
    objective: 'ddpm-eps',
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    lr: cfg.lr,
    minLr: cfg.minLr ?? 1e-5,
    warmupEpochs: cfg.warmupEpochs ?? 0.2,
    weightDecay: cfg.weightDecay ?? 0,
    clipNorm: cfg.clipNorm ?? 1,
    emaDecay: cfg.emaDecay ?? 0.999,
    timesteps: cfg.timesteps ?? 1000,
    seed: cfg.seed,
  };
}

/** One epoch of a DDPM run. */
export interface DdpmEpoch {
  epoch: number;
  /** Mean epsilon-prediction loss over the epoch. */
  loss: number;
  lr: number;
  seconds: number;
  imagesPerSecond: number;
}

/**
 * Trains a U-Net with the DDPM objective on `train`'s images (labels unused): per batch,
 * t uniform in 1..T and eps ~ N(0, I) from the epoch's noise stream, AdamW on a cosine
 * schedule with warm-up, gradient clipping, an EMA of the weights after each step, a JSONL
 * log and checkpoints (weights, optimiser, `ema`) at every epoch end and every
 * `checkpointEvery` steps. `resume` continues bit-identically.
 * @example
 * const { ema } = await trainDdpm({ def: getDiffusionPreset('ddpm-unet-fmnist'), train,
 *   config: { epochs: 10, batchSize: 128, lr: 1e-3, seed: 0 }, outDir: 'runs/ddpm' });
 */
export async function trainDdpm(opts: {
  def: UNetDef;
  train: ImageDataset;
  config: DdpmConfig;
  outDir?: string;
  resume?: boolean | string;
  override?: boolean;
  checkpointEvery?: number;
  stopAfter?: number;
  onStep?: (s: StepInfo, total: number) => void;
  log?: (rec: Record<string, unknown>) => void;
}): Promise<{ store: ParamStore; ema: ParamStore; history: DdpmEpoch[]; compute: ComputeRecord }> {
  const { def, train, config: cfg } = opts;
  const h = ddpmHyper(cfg);
  // The command line's ranges, for callers of the library too.
  checkRange('--epochs', cfg.epochs);
  checkRange('--batch-size', cfg.batchSize);
  const [c, hh, w] = def.inputShape;
  if (train.channels !== c || train.height !== hh || train.width !== w) {
    throw new UsageError(
      `${train.name} has ${train.channels}x${train.height}x${train.width} images, ${def.name} takes ${c}x${hh}x${w}`,
    );
  }
  const schedule = ddpmSchedule(h.timesteps as number);
  const g = ddpmTrainingGraph(def, cfg.seed);
  const built = g.b.build();
  const names = built.params;
  const store = ParamStore.fromInitializers(built.model.graph.initializers, names);
  const shapes = new Map(names.map((n) => [n, store.get(n).shape]));
  const opt = new AdamW(store, defaultDecayGroups(names, h.weightDecay as number, shapes));
  const ema = new Ema(store, names, h.emaDecay as number);
  const stepsPerEpoch = Math.ceil(train.size / cfg.batchSize);
  const total = cfg.epochs * stepsPerEpoch;
  const lr = cosineWithWarmup({
    baseLr: cfg.lr,
    minLr: h.minLr as number,
    warmupSteps: Math.min(total, Math.round((h.warmupEpochs as number) * stepsPerEpoch)),
    totalSteps: total,
  });
  if (opts.resume === true && !opts.outDir) {
    throw new UsageError('resume needs an output folder or a checkpoint path');
  }
  const link = opts.outDir ? join(opts.outDir, CHECKPOINT_DIR) : undefined;
  if (opts.outDir) mkdirSync(opts.outDir, { recursive: true });
  const resumeFrom = opts.resume === true ? link! : opts.resume || undefined;
  const out = await runTraining<DdpmEpoch>({
    epochs: cfg.epochs,
    stopAfter: opts.stopAfter,
    phases: [
      {
        name: 'ddpm',
        updates: ['backbone'],
        objective: graphObjective({
          graph: { model: built.model, loss: g.loss, trainable: names },
          feeds: (batch, streams) => {
            const n = batch.length;
            const feeds = ddpmFeeds(
              gatherBatch(train, batch).x,
              [n, c, hh, w],
              schedule,
              streams.noise,
            );
            return { ...feeds, ...dropoutFeeds(g.ctx, n, streams.dropout) };
          },
          threads: cfg.threads,
        }),
        params: store,
        optimizer: opt,
        lr,
        batches: (order) => epochBatches(train.size, cfg.batchSize, order),
        streams: separateStreams(cfg.seed),
        clipNorm: h.clipNorm as number,
        afterUpdate: (k) => ema.update(store, k),
      },
    ],
    stores: { weights: store, ema: ema.store },
    log: opts.log,
    logFile: opts.outDir ? join(opts.outDir, 'log.jsonl') : undefined,
    onStep: (s) => opts.onStep?.(s, total),
    epochRecord: (s: EpochSummary) => ({
      epoch: s.epoch,
      loss: s.loss,
      lr: s.lr,
      seconds: s.seconds,
      imagesPerSecond: s.images / s.seconds,
    }),
    identity: { preset: def.name, config: cfg, hyper: h },
    checkpoint: link ? { path: link, every: opts.checkpointEvery } : undefined,
    resume: resumeFrom
      ? { path: resumeFrom, override: opts.override, hyperOf: (c0) => ddpmHyper(c0 as DdpmConfig) }
      : undefined,
  });
  return { store, ema: ema.store, history: out.history, compute: out.compute };
}
