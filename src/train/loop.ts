import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gatherBatch, type ImageDataset } from '../data/dataset.js';
import { epochBatches, pkBatches } from '../data/samplers.js';
import {
  compose,
  horizontalFlip,
  randomCropWithPadding,
  randomErasing,
  type Transform,
} from '../data/transforms.js';
import { UsageError } from '../util/errors.js';
import { dropoutFeeds } from '../layers/dropout.js';
import { evaluateModel, type ModelEvaluation } from '../eval/evaluate.js';
import { buildBackbone } from '../models/registry.js';
import { INPUT_NAME, type ModelDef } from '../models/types.js';
import { modelWithWeights } from '../models/weights.js';
import type { Model } from '../onnx/ir.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { CHECKPOINT_DIR, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import {
  crossEntropy,
  oneHot,
  SAME_ID_NAME,
  sameIdMask,
  TARGET_NAME,
  tripletBatchHard,
} from './losses.js';
import { AdamW, clipGradNorm, defaultDecayGroups, type Optimizer, SGD } from './optim.js';
import { ParamStore } from '../models/params.js';
import { Rng } from '../util/rng.js';
import { cosineWithWarmup } from './schedule.js';
import { TrainStep } from './step.js';

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
 * Supervised training of a backbone (cross-entropy with optional label smoothing, or for
 * ReID ID loss + batch-hard triplet on PK batches) with AdamW or SGD, a per-step cosine
 * schedule with warm-up, augmentation, evaluation, a JSONL log and a checkpoint at every
 * epoch end. With `resume`, training continues from the checkpoint in `outDir`
 * bit-identically: every random draw of epoch e comes from streams forked from the seed
 * and e, and the optimiser state is restored.
 * @param opts.init - starting weights (fine-tuning); default: the preset's seeded initialisation
 * @param opts.resume - true: continue from `outDir/checkpoint`; a path: from that checkpoint
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
  /** Stop after this many epochs of the schedule (an interruption, for resume tests). */
  stopAfter?: number;
  onStep?: (step: number, total: number, loss: number, imagesPerSecond: number) => void;
  log?: (rec: Record<string, unknown>) => void;
}): Promise<TrainResult> {
  const { def, train, config: cfg } = opts;
  if (train.numClasses !== def.numClasses && cfg.task !== 'reid') {
    throw new UsageError(
      `model ${def.name} has ${def.numClasses} classes, data set ${train.name} has ${train.numClasses}`,
    );
  }
  const task = cfg.task ?? 'classification';
  for (const [flag, v] of [
    ['epochs', cfg.epochs],
    ['batch size', cfg.batchSize],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new UsageError(`${flag} must be an integer >= 1, got ${v}`);
  }
  const tg = buildBackbone(def, 'train', cfg.seed);
  const { loss: ce } = crossEntropy(tg.b, tg.logits, def.numClasses);
  let loss = ce;
  if (task === 'reid') {
    const { loss: tri } = tripletBatchHard(tg.b, tg.preNeckFeature, cfg.tripletMargin ?? 0.3);
    loss = tg.b.add(ce, tg.b.mul(tri, tg.b.scalar(cfg.tripletWeight ?? 1)));
  }
  tg.b.output(loss, 'loss');
  const built = tg.b.build();
  const names = built.params;
  const store =
    opts.init?.clone() ??
    ParamStore.fromInitializers(built.model.graph.initializers, [...names, ...built.buffers]);
  const shapes = new Map(names.map((n) => [n, store.get(n).shape]));
  const groups = defaultDecayGroups(names, cfg.weightDecay ?? 0.05, shapes);
  const opt: Optimizer =
    cfg.optimizer === 'sgd'
      ? new SGD(store, groups, { momentum: cfg.momentum ?? 0.9, nesterov: true })
      : new AdamW(store, groups);
  const stepsPerEpoch =
    task === 'reid'
      ? pkBatches(
          train.labels,
          cfg.pkP ?? 16,
          Math.max(1, Math.floor(cfg.batchSize / (cfg.pkP ?? 16))),
          new Rng(0),
        ).length
      : Math.ceil(train.size / cfg.batchSize);
  const total = cfg.epochs * stepsPerEpoch;
  const lrAt = cosineWithWarmup({
    baseLr: cfg.lr,
    minLr: cfg.minLr ?? 0,
    warmupSteps: Math.min(total, Math.round((cfg.warmupEpochs ?? 0) * stepsPerEpoch)),
    totalSteps: total,
  });
  const history: EpochLog[] = [];
  let start = 0;
  let globalStep = 0;
  if (opts.resume) {
    if (opts.resume === true && !opts.outDir) {
      throw new UsageError('resume needs an output folder or a checkpoint path');
    }
    const ck = loadCheckpoint(
      typeof opts.resume === 'string' ? opts.resume : join(opts.outDir!, CHECKPOINT_DIR),
    );
    if (ck.state.preset !== def.name) {
      throw new UsageError(`${ck.dir} is a checkpoint of ${ck.state.preset}, not of ${def.name}`);
    }
    const seed = ck.state.rng?.seed;
    if (seed !== undefined && seed !== cfg.seed) {
      throw new UsageError(
        `${ck.dir} was trained with seed ${seed}; resuming with seed ${cfg.seed} would not replay it`,
      );
    }
    for (const n of store.names()) {
      const t = ck.tensors.get(n);
      if (!t || t.data.length !== store.get(n).data.length) {
        throw new UsageError(`${ck.dir}: '${n}' is missing or has another shape`);
      }
      store.get(n).data.set(t.data as Float32Array);
    }
    opt.loadState(ck.state.optimizer);
    start = ck.state.epoch + 1;
    globalStep = ck.state.globalStep ?? start * stepsPerEpoch;
    history.push(...(ck.state.history as EpochLog[]));
  }
  if (opts.outDir) mkdirSync(opts.outDir, { recursive: true });
  const logLine = (rec: Record<string, unknown>) => {
    opts.log?.(rec);
    if (opts.outDir) appendFileSync(join(opts.outDir, 'log.jsonl'), `${JSON.stringify(rec)}\n`);
  };
  const step = await TrainStep.create({
    model: built.model,
    loss: 'loss',
    trainable: names,
    fed: built.buffers,
    bufferUpdates: new Map([...tg.ctx.bufferUpdates].map(([k, v]) => [k, v.name])),
    session: { threads: cfg.threads },
  });
  const aug = augmentation(cfg);
  const [c, h, w] = def.inputShape;
  const end = Math.min(cfg.epochs, opts.stopAfter ?? cfg.epochs);
  for (let epoch = start; epoch < end; epoch++) {
    const t0 = Date.now();
    const rng = new Rng(cfg.seed).fork(`epoch-${epoch}`);
    const order =
      task === 'reid'
        ? pkBatches(
            train.labels,
            cfg.pkP ?? 16,
            Math.max(1, Math.floor(cfg.batchSize / (cfg.pkP ?? 16))),
            rng.fork('order'),
          )
        : epochBatches(train.size, cfg.batchSize, rng.fork('order'));
    const augRng = rng.fork('augment');
    const maskRng = rng.fork('dropout');
    let lossSum = 0;
    let seen = 0;
    let lr = 0;
    let tStep = Date.now();
    for (const idx of order) {
      const n = idx.length;
      const batch = gatherBatch(train, idx);
      let x = batch.x;
      if (aug) x = aug(x, { n, c, h, w }, augRng);
      const feeds: Record<string, Tensor> = {
        [INPUT_NAME]: float32([n, c, h, w], x),
        [TARGET_NAME]: float32(
          [n, def.numClasses],
          oneHot(batch.y, def.numClasses, cfg.labelSmoothing ?? 0),
        ),
      };
      if (task === 'reid') feeds[SAME_ID_NAME] = float32([n, n], sameIdMask(batch.y));
      Object.assign(feeds, dropoutFeeds(tg.ctx, n, maskRng));
      const r = await step.run(feeds, store);
      if (cfg.clipNorm) clipGradNorm(r.grads, cfg.clipNorm);
      lr = lrAt(globalStep);
      opt.step(r.grads, lr);
      globalStep++;
      lossSum += r.loss * n;
      seen += n;
      const now = Date.now();
      const imagesPerSecond = (1000 * n) / Math.max(1, now - tStep);
      tStep = now;
      opts.onStep?.(globalStep, total, r.loss, imagesPerSecond);
      logLine({ kind: 'step', epoch, step: globalStep, loss: r.loss, lr, imagesPerSecond });
    }
    const seconds = (Date.now() - t0) / 1000;
    const rec: EpochLog = {
      epoch,
      loss: lossSum / seen,
      lr,
      seconds,
      imagesPerSecond: seen / seconds,
    };
    const last = epoch === cfg.epochs - 1;
    if (opts.test && (last || (cfg.evalEvery && (epoch + 1) % cfg.evalEvery === 0))) {
      rec.eval = await evaluateModel(modelWithWeights(def, store), opts.test, {
        task: task === 'reid' ? 'retrieval' : 'both',
        threads: cfg.threads,
      });
    }
    history.push(rec);
    logLine({ kind: 'epoch', ...rec });
    if (opts.outDir) {
      saveCheckpoint(join(opts.outDir, 'checkpoint'), store, {
        preset: def.name,
        presetOptions: { numClasses: def.numClasses, bnneck: def.bnneck },
        config: cfg,
        epoch,
        globalStep,
        optimizer: opt.state(),
        rng: { seed: cfg.seed, base: new Rng(cfg.seed).state() },
        history,
      });
    }
  }
  await step.release();
  return { store, history, model: modelWithWeights(def, store) };
}
