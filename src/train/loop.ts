import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageDataset } from '../data/dataset.js';
import {
  compose,
  horizontalFlip,
  randomCropWithPadding,
  randomErasing,
  type Transform,
} from '../data/transforms.js';
import { UsageError } from '../util/errors.js';
import { evaluateModel, type ModelEvaluation } from '../eval/evaluate.js';
import { buildBackbone } from '../models/registry.js';
import type { ModelDef } from '../models/types.js';
import { modelWithWeights } from '../models/weights.js';
import type { Model } from '../onnx/ir.js';
import { CHECKPOINT_DIR, type WriteHook } from './checkpoint.js';
import type { ComputeRecord } from './compute.js';
import { addTaskLoss, graphObjective, taskBatches, taskFeeds } from './objective.js';
import { AdamW, defaultDecayGroups, SGD } from './optim.js';
import { ParamStore } from '../models/params.js';
import { Rng } from '../util/rng.js';
import { type EpochSummary, type Phase, runTraining, type StepInfo } from './run.js';
import { cosineWithWarmup } from './schedule.js';
import { separateStreams, type StreamPlan } from './streams.js';

export interface SupervisedConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  minLr?: number;
  warmupEpochs?: number;
  weightDecay?: number;
  optimizer?: 'adamw' | 'sgd';
  momentum?: number;
  labelSmoothing?: number;
  clipNorm?: number;
  /** Random crop padding (pixels), horizontal flip, random erasing probability. */
  augment?: { cropPad?: number; flip?: boolean; erasing?: number };
  /** 'reid': ID cross-entropy + batch-hard triplet on PK batches (TransReID recipe). */
  task?: 'classification' | 'reid';
  tripletMargin?: number;
  tripletWeight?: number;
  /** Identities per batch for 'reid' (batch = P·K, K = batchSize / P). */
  pkP?: number;
  seed: number;
  threads?: number;
  /** Evaluate every N epochs (0: only at the end). */
  evalEvery?: number;
}

export interface EpochLog {
  epoch: number;
  loss: number;
  lr: number;
  seconds: number;
  imagesPerSecond: number;
  eval?: ModelEvaluation;
}

export interface TrainResult {
  store: ParamStore;
  history: EpochLog[];
  /** The evaluation graph with the trained weights. */
  model: Model;
  /** Steps, learning rates and data order spent (over the whole run when resumed). */
  compute: ComputeRecord;
}

/**
 * The evaluation graph of `def` with `store`'s values as initializers (an alias of
 * {@link modelWithWeights}).
 */
export function evalModelWith(def: ModelDef, store: ParamStore, seed = 0): Model {
  return modelWithWeights(def, store, seed);
}

function augmentation(cfg: SupervisedConfig): Transform | undefined {
  const a = cfg.augment ?? {};
  const ts: Transform[] = [];
  if (a.cropPad) ts.push(randomCropWithPadding(a.cropPad));
  if (a.flip) ts.push(horizontalFlip(0.5));
  if (a.erasing) ts.push(randomErasing({ p: a.erasing }));
  return ts.length ? compose(...ts) : undefined;
}

/**
 * The hyper-parameters of a supervised run with every default filled in: a resume must
 * match them (the threads and the evaluation interval do not change the numbers).
 */
export function supervisedHyper(cfg: SupervisedConfig): Record<string, unknown> {
  const task = cfg.task ?? 'classification';
  const a = cfg.augment ?? {};
  const reid = task === 'reid';
  return {
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    lr: cfg.lr,
    minLr: cfg.minLr ?? 0,
    warmupEpochs: cfg.warmupEpochs ?? 0,
    weightDecay: cfg.weightDecay ?? 0.05,
    optimizer: cfg.optimizer ?? 'adamw',
    momentum: cfg.optimizer === 'sgd' ? (cfg.momentum ?? 0.9) : null,
    labelSmoothing: cfg.labelSmoothing ?? 0,
    clipNorm: cfg.clipNorm ?? null,
    augment: { cropPad: a.cropPad ?? 0, flip: a.flip ?? false, erasing: a.erasing ?? 0 },
    task,
    tripletMargin: reid ? (cfg.tripletMargin ?? 0.3) : null,
    tripletWeight: reid ? (cfg.tripletWeight ?? 1) : null,
    pkP: reid ? (cfg.pkP ?? 16) : null,
    seed: cfg.seed,
  };
}

function checkConfig(def: ModelDef, train: ImageDataset, cfg: SupervisedConfig): void {
  if (train.numClasses !== def.numClasses && cfg.task !== 'reid') {
    throw new UsageError(
      `model ${def.name} has ${def.numClasses} classes, data set ${train.name} has ${train.numClasses}`,
    );
  }
  for (const [flag, v] of [
    ['epochs', cfg.epochs],
    ['batch size', cfg.batchSize],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new UsageError(`${flag} must be an integer >= 1, got ${v}`);
  }
}

/**
 * The phase of supervised training: the backbone's training graph with the task loss, its
 * optimiser (AdamW or SGD with the decay groups), the cosine schedule with warm-up over
 * all epochs, task batches and feeds (augmentation, dropout masks) from `streams`.
 * @param init - starting weights (copied); default: the preset's seeded initialisation
 * @param streams - default `separateStreams(cfg.seed)` (forks `epoch-<e>`)
 * @returns the phase, the store it trains, and the schedule's length in steps
 */
export function supervisedPhase(
  def: ModelDef,
  train: ImageDataset,
  cfg: SupervisedConfig,
  init?: ParamStore,
  streams: StreamPlan = separateStreams(cfg.seed),
): { phase: Phase; store: ParamStore; totalSteps: number } {
  const task = cfg.task ?? 'classification';
  const tg = buildBackbone(def, 'train', cfg.seed);
  const loss = addTaskLoss(tg.b, tg.logits, tg.preNeckFeature, {
    task,
    numClasses: def.numClasses,
    tripletMargin: cfg.tripletMargin,
    tripletWeight: cfg.tripletWeight ?? 1,
  });
  tg.b.output(loss, 'loss');
  const built = tg.b.build();
  const names = built.params;
  const store =
    init?.clone() ??
    ParamStore.fromInitializers(built.model.graph.initializers, [...names, ...built.buffers]);
  const shapes = new Map(names.map((n) => [n, store.get(n).shape]));
  const groups = defaultDecayGroups(names, cfg.weightDecay ?? 0.05, shapes);
  const batches = taskBatches(train, task, cfg.batchSize, cfg.pkP);
  // PK epochs vary a little in length; the schedule counts the one drawn from Rng(0).
  const stepsPerEpoch =
    task === 'reid' ? batches(new Rng(0)).length : Math.ceil(train.size / cfg.batchSize);
  const total = cfg.epochs * stepsPerEpoch;
  const aug = augmentation(cfg);
  const [c, h, w] = def.inputShape;
  const phase: Phase = {
    name: 'backbone',
    updates: ['backbone'],
    objective: graphObjective({
      graph: {
        model: built.model,
        loss: 'loss',
        trainable: names,
        fed: built.buffers,
        bufferUpdates: new Map([...tg.ctx.bufferUpdates].map(([k, v]) => [k, v.name])),
      },
      feeds: taskFeeds({
        data: train,
        task,
        numClasses: def.numClasses,
        inputShape: def.inputShape,
        labelSmoothing: cfg.labelSmoothing,
        augment: aug ? (x, n, rng) => aug(x, { n, c, h, w }, rng) : undefined,
        dropout: tg.ctx,
      }),
      threads: cfg.threads,
    }),
    params: store,
    optimizer:
      cfg.optimizer === 'sgd'
        ? new SGD(store, groups, { momentum: cfg.momentum ?? 0.9, nesterov: true })
        : new AdamW(store, groups),
    lr: cosineWithWarmup({
      baseLr: cfg.lr,
      minLr: cfg.minLr ?? 0,
      warmupSteps: Math.min(total, Math.round((cfg.warmupEpochs ?? 0) * stepsPerEpoch)),
      totalSteps: total,
    }),
    batches,
    streams,
    clipNorm: cfg.clipNorm,
  };
  return { phase, store, totalSteps: total };
}

/**
 * Supervised training of a backbone (cross-entropy with optional label smoothing, or for
 * ReID ID loss + batch-hard triplet on PK batches) with AdamW or SGD, a per-step cosine
 * schedule with warm-up, augmentation, evaluation, a JSONL log and a checkpoint at every
 * epoch end (and every `checkpointEvery` steps): {@link runTraining} with the one phase of
 * {@link supervisedPhase}. With `resume`, training continues from the checkpoint
 * bit-identically: every random draw of epoch e comes from streams forked from the seed
 * and e, and the optimiser state is restored; changed hyper-parameters are refused unless
 * `override`.
 * @param opts.init - starting weights (fine-tuning); default: the preset's seeded initialisation
 * @param opts.resume - true: continue from `outDir/checkpoint`; a path: from that checkpoint
 * @param opts.streams - the random streams (default `separateStreams(seed)`); two runs
 *   given the same plan draw the same batches, augmentation and dropout masks
 * @example
 * const { history, model } = await trainSupervised({
 *   def: getPreset('resnet-tiny-fmnist'), train, test,
 *   config: { epochs: 4, batchSize: 128, lr: 3e-3, warmupEpochs: 0.5, seed: 0 },
 *   outDir: 'runs/resnet',
 * });
 */
export async function trainSupervised(opts: {
  def: ModelDef;
  train: ImageDataset;
  test?: ImageDataset;
  config: SupervisedConfig;
  init?: ParamStore;
  outDir?: string;
  resume?: boolean | string;
  /** Accept a checkpoint trained with other hyper-parameters. */
  override?: boolean;
  /** Also checkpoint every this many steps (default: at epoch ends only). */
  checkpointEvery?: number;
  streams?: StreamPlan;
  /** Stop after this many epochs of the schedule (an interruption, for resume tests). */
  stopAfter?: number;
  onStep?: (step: number, total: number, loss: number, imagesPerSecond: number) => void;
  /** Every step as the loop reports it (batch, feeds, learning rate). */
  onStepInfo?: (s: StepInfo) => void;
  log?: (rec: Record<string, unknown>) => void;
  /** Called at every checkpoint write boundary (tests interrupt the write there). */
  writeHook?: WriteHook;
}): Promise<TrainResult> {
  const { def, train, config: cfg } = opts;
  checkConfig(def, train, cfg);
  const { phase, store, totalSteps } = supervisedPhase(def, train, cfg, opts.init, opts.streams);
  if (opts.resume === true && !opts.outDir) {
    throw new UsageError('resume needs an output folder or a checkpoint path');
  }
  const link = opts.outDir ? join(opts.outDir, CHECKPOINT_DIR) : undefined;
  if (opts.outDir) mkdirSync(opts.outDir, { recursive: true });
  const resumeFrom = opts.resume === true ? link! : opts.resume || undefined;
  const hyper = supervisedHyper(cfg);
  // A non-default stream plan is part of what a resume must match.
  if (opts.streams) hyper.streams = opts.streams.kind;
  const out = await runTraining<EpochLog>({
    epochs: cfg.epochs,
    stopAfter: opts.stopAfter,
    phases: [phase],
    stores: { weights: store },
    log: opts.log,
    logFile: opts.outDir ? join(opts.outDir, 'log.jsonl') : undefined,
    onStep: (s) => {
      opts.onStepInfo?.(s);
      opts.onStep?.(s.globalStep, totalSteps, s.loss, s.imagesPerSecond);
    },
    epochRecord: (s) => supervisedRecord(s, opts.def, store, cfg, opts.test),
    identity: {
      preset: def.name,
      presetOptions: { numClasses: def.numClasses, bnneck: def.bnneck },
      config: cfg,
      hyper,
    },
    checkpoint: link
      ? { path: link, every: opts.checkpointEvery, hook: opts.writeHook }
      : undefined,
    resume: resumeFrom
      ? {
          path: resumeFrom,
          override: opts.override,
          hyperOf: (stored) => supervisedHyper(stored as SupervisedConfig),
        }
      : undefined,
  });
  return { store, history: out.history, model: modelWithWeights(def, store), compute: out.compute };
}

/** An epoch's record, with an evaluation at the last epoch and every `evalEvery`. */
async function supervisedRecord(
  s: EpochSummary,
  def: ModelDef,
  store: ParamStore,
  cfg: SupervisedConfig,
  test: ImageDataset | undefined,
): Promise<EpochLog> {
  const rec: EpochLog = {
    epoch: s.epoch,
    loss: s.loss,
    lr: s.lr,
    seconds: s.seconds,
    imagesPerSecond: s.images / s.seconds,
  };
  const last = s.epoch === cfg.epochs - 1;
  if (test && (last || (cfg.evalEvery && (s.epoch + 1) % cfg.evalEvery === 0))) {
    rec.eval = await evaluateModel(modelWithWeights(def, store), test, {
      task: cfg.task === 'reid' ? 'retrieval' : 'both',
      threads: cfg.threads,
    });
  }
  return rec;
}
