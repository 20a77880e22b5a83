import { gatherBatch, type ImageDataset } from '../data/dataset.js';
import { epochBatches, pkBatches } from '../data/samplers.js';
import { ModelError } from '../util/errors.js';
import { dropoutFeeds } from '../layers/dropout.js';
import { buildBackbone } from '../models/registry.js';
import { INPUT_NAME, type ModelDef } from '../models/types.js';
import type { Model } from '../onnx/ir.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { Session } from '../runtime/session.js';
import {
  crossEntropy,
  oneHot,
  SAME_ID_NAME,
  sameIdMask,
  TARGET_NAME,
  tripletBatchHard,
} from '../train/losses.js';
import { AdamW, defaultDecayGroups } from '../train/optim.js';
import { ParamStore } from '../models/params.js';
import { Rng } from '../util/rng.js';
import { cosineWithWarmup } from '../train/schedule.js';
import { TrainStep } from '../train/step.js';
import {
  addDenoiseLosses,
  addDenoiserParams,
  type DenoiseLossKind,
  finishSurgery,
  surgeryBuilder,
  useFusedWeights,
} from './graph.js';
import { type ConversionPlan, denoiserParamNames, planConversion } from './plan.js';

/** Maps a batch of raw images (NCHW in [0, 1]) to the model's input (normalisation). */
export type Preprocess = (x: Float32Array, n: number) => Float32Array;

export interface DenoiseTrainConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  minLr?: number;
  /** Warm-up as a fraction of all steps (default 0.05). */
  warmup?: number;
  weightDecay?: number;
  seed: number;
  threads?: number;
}

/** One logged step or epoch. */
export type TrainLog = Record<string, unknown>;

export interface EpochRecord {
  epoch: number;
  phase: 'label-free' | 'denoisers' | 'backbone';
  loss: number;
  /** Mean denoising loss per layer over the epoch. */
  layers: Record<string, number>;
  seconds: number;
}

function noiseSeed(seed: number, epoch: number, salt: number): number {
  return (new Rng(seed).fork(`noise-${salt}-${epoch}`).nextUint32() % 1_000_000) + 1;
}

/** A model with the store's current values in its initializers (others unchanged). */
export function withValues(model: Model, store: ParamStore, names: Iterable<string>): Model {
  const inits = new Map(model.graph.initializers);
  for (const n of names) {
    const p = store.get(n);
    inits.set(n, { dtype: 'float32', dims: [...p.shape], data: Float32Array.from(p.data) });
  }
  return { ...model, graph: { ...model.graph, initializers: inits } };
}

/**
 * Feeds for a batch. The input takes the model's own per-sample shape when it is static
 * (a data set of feature vectors can feed a [N, D] model), else NCHW.
 */
function batchFeeds(
  data: ImageDataset,
  idx: Int32Array,
  preprocess: Preprocess | undefined,
  input: { name: string; shape: (number | string | null)[] | null } = {
    name: INPUT_NAME,
    shape: null,
  },
): { feeds: Record<string, Tensor>; y: Int32Array } {
  const { x, y } = gatherBatch(data, idx);
  const n = idx.length;
  const v = preprocess ? preprocess(x, n) : x;
  const per = input.shape?.slice(1);
  const dims =
    per?.every((d) => typeof d === 'number') &&
    (per as number[]).reduce((a, d) => a * d, 1) * n === v.length
      ? [n, ...(per as number[])]
      : [n, data.channels, data.height, data.width];
  return { feeds: { [input.name]: float32(dims, v) }, y };
}

/**
 * The label-free denoising-loss graph over a frozen backbone: the backbone's own weights
 * are constants, the denoisers are the only parameters, loss = weight · Σ_l loss_l.
 */
export function labelFreeGraph(
  model: Model,
  plan: ConversionPlan,
  values: Map<string, Tensor>,
  seed: number,
  weight = 1,
  lossKind: DenoiseLossKind = 'l1+mse',
): { model: Model; layerLosses: string[] } {
  const b = surgeryBuilder(model);
  const params = addDenoiserParams(b, plan, values);
  const { total, perLayer } = addDenoiseLosses(b, plan, params, seed, lossKind);
  b.output(weight === 1 ? total : b.mul(total, b.scalar(weight)), 'loss');
  return { model: finishSurgery(model, b), layerLosses: perLayer.map((v) => v.name) };
}

/**
 * Label-free DenoiseRep (the paper's unsupervised recipe): the backbone is frozen and
 * only the denoisers train, on the summed per-layer L1 + MSE noise-prediction loss, with
 * AdamW and a cosine schedule. Each epoch draws its data order and its noise from streams
 * derived from the seed, so runs repeat exactly.
 * @param opts.model - evaluation graph of the trained backbone (weights as initializers)
 * @param opts.plan - selected layers and timesteps
 * @param opts.init - initial denoiser values (initDenoisers)
 * @param opts.data - images; labels are not used (any merged set of unlabeled images works)
 */
export async function trainLabelFree(opts: {
  model: Model;
  plan: ConversionPlan;
  init: Map<string, Tensor>;
  data: ImageDataset;
  config: DenoiseTrainConfig;
  preprocess?: Preprocess;
  /** Loss weight (the label-augmented phase A uses 0.01 · Σ). */
  lossWeight?: number;
  /** 'l1+mse' (the paper's, default) or 'mse' (the closed form's objective). */
  lossKind?: DenoiseLossKind;
  log?: (rec: TrainLog) => void;
  store?: ParamStore;
  optimizer?: AdamW;
  phase?: EpochRecord['phase'];
  /** First epoch index (label-augmented training calls this once per phase). */
  epochOffset?: number;
  totalSteps?: number;
  stepOffset?: number;
}): Promise<{
  values: Map<string, Tensor>;
  history: EpochRecord[];
  store: ParamStore;
  optimizer: AdamW;
}> {
  const { plan, config: cfg } = opts;
  const names = denoiserParamNames(plan);
  const store = opts.store ?? ParamStore.fromTensors(opts.init);
  const shapes = new Map(names.map((n) => [n, store.get(n).shape]));
  const opt =
    opts.optimizer ?? new AdamW(store, defaultDecayGroups(names, cfg.weightDecay ?? 0, shapes));
  const stepsPerEpoch = Math.ceil(opts.data.size / cfg.batchSize);
  const total = opts.totalSteps ?? cfg.epochs * stepsPerEpoch;
  const lrAt = cosineWithWarmup({
    baseLr: cfg.lr,
    minLr: cfg.minLr ?? 0,
    warmupSteps: Math.round((cfg.warmup ?? 0.05) * total),
    totalSteps: total,
  });
  const history: EpochRecord[] = [];
  let k = opts.stepOffset ?? 0;
  for (let e = 0; e < cfg.epochs; e++) {
    const epoch = (opts.epochOffset ?? 0) + e;
    const t0 = Date.now();
    const graph = labelFreeGraph(
      opts.model,
      plan,
      store.toTensors(names),
      noiseSeed(cfg.seed, epoch, 1),
      opts.lossWeight ?? 1,
      opts.lossKind,
    );
    const step = await TrainStep.create({
      model: graph.model,
      loss: 'loss',
      trainable: names,
      extraOutputs: graph.layerLosses,
      session: { threads: cfg.threads },
    });
    const sums = new Float64Array(plan.layers.length);
    let lossSum = 0;
    let count = 0;
    for (const idx of epochBatches(
      opts.data.size,
      cfg.batchSize,
      new Rng(cfg.seed).fork(`denoise-epoch-${epoch}`),
    )) {
      const { feeds } = batchFeeds(opts.data, idx, opts.preprocess, opts.model.graph.inputs[0]);
      const r = await step.run(feeds, store);
      const lr = lrAt(Math.min(k, total));
      opt.step(r.grads, lr);
      k++;
      lossSum += r.loss * idx.length;
      graph.layerLosses.forEach((n, i) => {
        sums[i]! += Number(r.extras[n]!.data[0]) * idx.length;
      });
      count += idx.length;
      opts.log?.({
        kind: 'step',
        phase: opts.phase ?? 'label-free',
        epoch,
        step: k,
        loss: r.loss,
        lr,
      });
    }
    await step.release();
    const rec: EpochRecord = {
      epoch,
      phase: opts.phase ?? 'label-free',
      loss: lossSum / count,
      layers: Object.fromEntries(plan.layers.map((p, i) => [p.layer.name, sums[i]! / count])),
      seconds: (Date.now() - t0) / 1000,
    };
    history.push(rec);
    opts.log?.({ kind: 'epoch', ...rec });
  }
  return { values: store.toTensors(names), history, store, optimizer: opt };
}

/**
 * Mean per-layer denoising loss of given denoisers on some data, with a fixed noise
 * seed (for before/after diagnostics; no training).
 */
export async function measureDenoisingLoss(opts: {
  model: Model;
  plan: ConversionPlan;
  values: Map<string, Tensor>;
  data: ImageDataset;
  batchSize: number;
  seed: number;
  preprocess?: Preprocess;
  threads?: number;
}): Promise<Record<string, number>> {
  const graph = labelFreeGraph(opts.model, opts.plan, opts.values, noiseSeed(opts.seed, 0, 2));
  graph.model.graph.outputs = [];
  const b = surgeryBuilder(graph.model);
  for (const n of graph.layerLosses) b.output(b.value(n));
  const session = await Session.create(finishSurgery(graph.model, b), { threads: opts.threads });
  const sums = new Float64Array(graph.layerLosses.length);
  let count = 0;
  for (let s = 0; s < opts.data.size; s += opts.batchSize) {
    const idx = Int32Array.from(
      { length: Math.min(opts.batchSize, opts.data.size - s) },
      (_, i) => s + i,
    );
    const { feeds } = batchFeeds(opts.data, idx, opts.preprocess, opts.model.graph.inputs[0]);
    const out = await session.run(feeds);
    graph.layerLosses.forEach((n, i) => {
      sums[i]! += Number(out[n]!.data[0]) * idx.length;
    });
    count += idx.length;
  }
  await session.release();
  return Object.fromEntries(opts.plan.layers.map((p, i) => [p.layer.name, sums[i]! / count]));
}

export interface LabelAugConfig extends DenoiseTrainConfig {
  /** Epochs per phase before switching (authors: 10 for CIFAR-10). */
  phaseEpochs: number;
  /** Weight of the denoising loss next to the task loss (authors' CIFAR-10 tutorial: 0.01). */
  denoiseWeight: number;
  /** Backbone learning rate in phase B (default: lr). */
  backboneLr?: number;
  labelSmoothing?: number;
  /** 'reid': ID cross-entropy + batch-hard triplet on PK batches in the backbone phases. */
  task?: 'classification' | 'reid';
  tripletMargin?: number;
  /** Identities per PK batch (K = batchSize / P). */
  pkP?: number;
}

/**
 * Label-augmented DenoiseRep: alternate every `phaseEpochs` epochs between
 * phase A (denoisers train, backbone frozen; loss = task + λ Σ denoising, where the task
 * loss reaches no trainable weight and so only λ Σ denoising is differentiated) and
 * phase B (denoisers frozen, backbone trains with the forward through the fused weights
 * W'(W), loss = task + λ Σ denoising). Starts with phase A. Classification task.
 * @param opts.def - the backbone architecture (a training graph is built from it)
 * @param opts.backbone - current backbone parameter and buffer values
 */
export async function trainLabelAugmented(opts: {
  def: ModelDef;
  backbone: ParamStore;
  plan: ConversionPlan;
  init: Map<string, Tensor>;
  data: ImageDataset;
  config: LabelAugConfig;
  filter: string;
  preprocess?: Preprocess;
  augment?: (x: Float32Array, n: number, rng: Rng) => Float32Array;
  log?: (rec: TrainLog) => void;
}): Promise<{ values: Map<string, Tensor>; backbone: ParamStore; history: EpochRecord[] }> {
  const { def, config: cfg, plan } = opts;
  const names = denoiserParamNames(plan);
  const dStore = ParamStore.fromTensors(opts.init);
  const dShapes = new Map(names.map((n) => [n, dStore.get(n).shape]));
  const dOpt = new AdamW(dStore, defaultDecayGroups(names, cfg.weightDecay ?? 0, dShapes));

  // Phase B graph: the backbone's training graph with fused weights and the task loss.
  const tg = buildBackbone(def, 'train', cfg.seed);
  const trainPlan = planConversion(tg.b.graph, {
    filter: opts.filter,
    timesteps: plan.timestepMode,
    schedule: {
      timesteps: plan.schedule.timesteps,
      betaStart: plan.schedule.betaStart,
      betaEnd: plan.schedule.betaEnd,
    },
  });
  const same =
    trainPlan.layers.map((p) => `${p.layer.name}@${p.t}`).join() ===
    plan.layers.map((p) => `${p.layer.name}@${p.t}`).join();
  if (!same)
    throw new ModelError('the training graph selects different layers than the evaluation graph');
  const built = tg.b.build();
  const bNames = built.params;
  const bShapes = new Map(bNames.map((n) => [n, opts.backbone.get(n).shape]));
  const bOpt = new AdamW(
    opts.backbone,
    defaultDecayGroups(bNames, cfg.weightDecay ?? 0.05, bShapes),
  );
  const evalModel = buildBackbone(def, 'eval', cfg.seed).b.build().model;

  const stepsPerEpoch = Math.ceil(opts.data.size / cfg.batchSize);
  const aEpochs = Array.from(
    { length: cfg.epochs },
    (_, e) => Math.floor(e / cfg.phaseEpochs) % 2 === 0,
  ).filter(Boolean).length;
  const bEpochs = cfg.epochs - aEpochs;
  const lrB = cosineWithWarmup({
    baseLr: cfg.backboneLr ?? cfg.lr,
    minLr: 0,
    warmupSteps: 0,
    totalSteps: Math.max(1, bEpochs * stepsPerEpoch),
  });
  const history: EpochRecord[] = [];
  let kA = 0;
  let kB = 0;
  for (let e = 0; e < cfg.epochs; e++) {
    const phaseA = Math.floor(e / cfg.phaseEpochs) % 2 === 0;
    if (phaseA) {
      const current = withValues(evalModel, opts.backbone, [...bNames, ...built.buffers]);
      const r = await trainLabelFree({
        model: current,
        plan,
        init: opts.init,
        data: opts.data,
        preprocess: opts.preprocess,
        config: { ...cfg, epochs: 1 },
        lossWeight: cfg.denoiseWeight,
        log: opts.log,
        store: dStore,
        optimizer: dOpt,
        phase: 'denoisers',
        epochOffset: e,
        totalSteps: Math.max(1, aEpochs * stepsPerEpoch),
        stepOffset: kA,
      });
      kA += stepsPerEpoch;
      history.push(...r.history);
      continue;
    }
    const t0 = Date.now();
    const b = surgeryBuilder(built.model);
    const dv = addDenoiserParams(b, trainPlan, dStore.toTensors(names));
    useFusedWeights(b, trainPlan, dv);
    const { total, perLayer } = addDenoiseLosses(b, trainPlan, dv, noiseSeed(cfg.seed, e, 3));
    let { loss: task } = crossEntropy(b, b.value(tg.logits.name), def.numClasses);
    if (cfg.task === 'reid') {
      const { loss: tri } = tripletBatchHard(
        b,
        b.value(tg.preNeckFeature.name),
        cfg.tripletMargin ?? 0.3,
      );
      task = b.add(task, tri);
    }
    b.output(b.add(task, b.mul(total, b.scalar(cfg.denoiseWeight))), 'loss');
    const model = finishSurgery(built.model, b);
    const step = await TrainStep.create({
      model,
      loss: 'loss',
      trainable: bNames,
      fed: [...built.buffers, ...names],
      bufferUpdates: new Map([...tg.ctx.bufferUpdates].map(([k, v]) => [k, v.name])),
      extraOutputs: perLayer.map((v) => v.name),
      session: { threads: cfg.threads },
    });
    const both = { get: (n: string) => (dStore.has(n) ? dStore.get(n) : opts.backbone.get(n)) };
    const rng = new Rng(cfg.seed).fork(`backbone-epoch-${e}`);
    let lossSum = 0;
    let count = 0;
    const sums = new Float64Array(plan.layers.length);
    const P = cfg.pkP ?? 16;
    const order =
      cfg.task === 'reid'
        ? pkBatches(
            opts.data.labels,
            P,
            Math.max(1, Math.floor(cfg.batchSize / P)),
            rng.fork('order'),
          )
        : epochBatches(opts.data.size, cfg.batchSize, rng.fork('order'));
    for (const idx of order) {
      const { feeds, y } = batchFeeds(opts.data, idx, undefined);
      if (cfg.task === 'reid')
        feeds[SAME_ID_NAME] = float32([idx.length, idx.length], sameIdMask(y));
      let x = feeds[INPUT_NAME]!.data as Float32Array;
      if (opts.augment) x = opts.augment(x, idx.length, rng);
      if (opts.preprocess) x = opts.preprocess(x, idx.length);
      feeds[INPUT_NAME] = float32(feeds[INPUT_NAME]!.dims, x);
      feeds[TARGET_NAME] = float32(
        [idx.length, def.numClasses],
        oneHot(y, def.numClasses, cfg.labelSmoothing ?? 0),
      );
      Object.assign(feeds, dropoutFeeds(tg.ctx, idx.length, rng));
      const r = await step.run(feeds, both);
      const lr = lrB(kB++);
      bOpt.step(r.grads, lr);
      lossSum += r.loss * idx.length;
      perLayer.forEach((v, i) => {
        sums[i]! += Number(r.extras[v.name]!.data[0]) * idx.length;
      });
      count += idx.length;
      opts.log?.({ kind: 'step', phase: 'backbone', epoch: e, step: kB, loss: r.loss, lr });
    }
    await step.release();
    const rec: EpochRecord = {
      epoch: e,
      phase: 'backbone',
      loss: lossSum / count,
      layers: Object.fromEntries(plan.layers.map((p, i) => [p.layer.name, sums[i]! / count])),
      seconds: (Date.now() - t0) / 1000,
    };
    history.push(rec);
    opts.log?.({ kind: 'epoch', ...rec });
  }
  return { values: dStore.toTensors(names), backbone: opts.backbone, history };
}
