import { gatherBatch, type ImageDataset } from '../data/dataset.js';
import { epochBatches } from '../data/samplers.js';
import { ModelError } from '../util/errors.js';
import { buildBackbone } from '../models/registry.js';
import { type BackboneGraph, INPUT_NAME, type ModelDef } from '../models/types.js';
import type { BuiltModel } from '../onnx/builder.js';
import type { Model, ValueInfo } from '../onnx/ir.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { Session } from '../runtime/session.js';
import type { ComputeRecord } from '../train/compute.js';
import {
  addTaskLoss,
  graphObjective,
  type GraphSpec,
  taskBatches,
  taskFeeds,
} from '../train/objective.js';
import { AdamW, defaultDecayGroups } from '../train/optim.js';
import { ParamStore } from '../models/params.js';
import { runTraining, type EpochSummary, type Phase, type StepInfo } from '../train/run.js';
import { Rng } from '../util/rng.js';
import { cosineWithWarmup, type LrSchedule } from '../train/schedule.js';
import { orderStreams, sharedDrawStreams } from '../train/streams.js';
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
  input: Pick<ValueInfo, 'name' | 'shape'> = { name: INPUT_NAME, shape: null },
): { feeds: Record<string, Tensor>; y: Int32Array } {
  const { x, y } = gatherBatch(data, idx);
  const n = idx.length;
  const v = preprocess ? preprocess(x, n) : x;
  const per = input.shape?.slice(1);
  const dims =
    per?.every((d) => typeof d === 'number') && per.reduce((a, d) => a * d, 1) * n === v.length
      ? [n, ...per]
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

/** A denoising epoch's history record from the loop's summary. */
function denoiseRecord(s: EpochSummary, plan: ConversionPlan): EpochRecord {
  const means = Object.values(s.tracked);
  return {
    epoch: s.epoch,
    phase: s.phase as EpochRecord['phase'],
    loss: s.loss,
    layers: Object.fromEntries(plan.layers.map((p, i) => [p.layer.name, means[i]!])),
    seconds: s.seconds,
  };
}

/**
 * The label-free phase: the denoisers of `plan` train on the summed per-layer
 * noise-prediction loss over the frozen backbone `model()` (read at each epoch start).
 * The graph draws its noise in-graph, seeded per epoch, so it is rebuilt each epoch.
 */
function labelFreePhase(o: {
  name: EpochRecord['phase'];
  model: () => Model;
  input: Pick<ValueInfo, 'name' | 'shape'> | undefined;
  plan: ConversionPlan;
  store: ParamStore;
  optimizer: AdamW;
  lr: LrSchedule;
  data: ImageDataset;
  batchSize: number;
  seed: number;
  weight: number;
  lossKind?: DenoiseLossKind;
  preprocess?: Preprocess;
  threads?: number;
  firstStep?: number;
}): Phase {
  const names = denoiserParamNames(o.plan);
  return {
    name: o.name,
    updates: ['denoisers'],
    objective: graphObjective({
      graph: (epoch): GraphSpec => {
        const g = labelFreeGraph(
          o.model(),
          o.plan,
          o.store.toTensors(names),
          noiseSeed(o.seed, epoch, 1),
          o.weight,
          o.lossKind,
        );
        return { model: g.model, loss: 'loss', trainable: names, extraOutputs: g.layerLosses };
      },
      feeds: (idx) => batchFeeds(o.data, idx, o.preprocess, o.input).feeds,
      threads: o.threads,
      resumableMidEpoch: false,
    }),
    params: o.store,
    optimizer: o.optimizer,
    lr: o.lr,
    batches: (order) => epochBatches(o.data.size, o.batchSize, order),
    streams: orderStreams(o.seed, (e) => `denoise-epoch-${e}`),
    firstStep: o.firstStep,
  };
}

/** The label-free cosine schedule: 5% warm-up by default, held at its end past `total`. */
function labelFreeLr(cfg: DenoiseTrainConfig, total: number): LrSchedule {
  const lrAt = cosineWithWarmup({
    baseLr: cfg.lr,
    minLr: cfg.minLr ?? 0,
    warmupSteps: Math.round((cfg.warmup ?? 0.05) * total),
    totalSteps: total,
  });
  return (k) => lrAt(Math.min(k, total));
}

/**
 * Label-free DenoiseRep (the paper's unsupervised recipe): the backbone is frozen and
 * only the denoisers train, on the summed per-layer L1 + MSE noise-prediction loss, with
 * AdamW and a cosine schedule: a one-phase configuration of `runTraining`. Each epoch
 * draws its data order and its noise from streams derived from the seed, so runs repeat
 * exactly.
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
  /** First epoch index (its noise and data order follow the epoch index). */
  epochOffset?: number;
  totalSteps?: number;
  stepOffset?: number;
}): Promise<{
  values: Map<string, Tensor>;
  history: EpochRecord[];
  store: ParamStore;
  optimizer: AdamW;
  compute: ComputeRecord;
}> {
  const { plan, config: cfg } = opts;
  const names = denoiserParamNames(plan);
  const store = opts.store ?? ParamStore.fromTensors(opts.init);
  const shapes = new Map(names.map((n) => [n, store.get(n).shape]));
  const opt =
    opts.optimizer ?? new AdamW(store, defaultDecayGroups(names, cfg.weightDecay ?? 0, shapes));
  const total = opts.totalSteps ?? cfg.epochs * Math.ceil(opts.data.size / cfg.batchSize);
  const out = await runTraining<EpochRecord>({
    epochs: cfg.epochs,
    firstEpoch: opts.epochOffset,
    phases: [
      labelFreePhase({
        name: opts.phase ?? 'label-free',
        model: () => opts.model,
        input: opts.model.graph.inputs[0],
        plan,
        store,
        optimizer: opt,
        lr: labelFreeLr(cfg, total),
        data: opts.data,
        batchSize: cfg.batchSize,
        seed: cfg.seed,
        weight: opts.lossWeight ?? 1,
        lossKind: opts.lossKind,
        preprocess: opts.preprocess,
        threads: cfg.threads,
        firstStep: opts.stepOffset,
      }),
    ],
    log: opts.log,
    epochRecord: (s) => denoiseRecord(s, plan),
  });
  return {
    values: store.toTensors(names),
    history: out.history,
    store,
    optimizer: opt,
    compute: out.compute,
  };
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
 * The backbone phase of label-augmented training: the task loss (plus λ Σ denoising,
 * with the forward through the fused weights W'(W)) trains the backbone; the denoisers
 * are fed, frozen. The control (`denoisers` null) is the same phase without denoisers:
 * the task loss alone on the plain weights, with the same batches, draws and schedule.
 */
function backbonePhase(o: {
  def: ModelDef;
  /** The backbone's training graph, before and after `build()`. */
  tg: BackboneGraph;
  built: BuiltModel;
  backbone: ParamStore;
  data: ImageDataset;
  cfg: LabelAugConfig;
  lr: LrSchedule;
  augment?: (x: Float32Array, n: number, rng: Rng) => Float32Array;
  preprocess?: Preprocess;
  denoisers: { store: ParamStore; plan: ConversionPlan } | null;
}): Phase {
  const { def, cfg, tg, built } = o;
  const bNames = built.params;
  const bShapes = new Map(bNames.map((n) => [n, o.backbone.get(n).shape]));
  const task = cfg.task ?? 'classification';
  const dNames = o.denoisers ? denoiserParamNames(o.denoisers.plan) : [];
  const graph = (epoch: number): GraphSpec => {
    const b = surgeryBuilder(built.model);
    let denoise: { total: ReturnType<typeof addDenoiseLosses>['total']; names: string[] } | null =
      null;
    if (o.denoisers) {
      const dv = addDenoiserParams(b, o.denoisers.plan, o.denoisers.store.toTensors(dNames));
      useFusedWeights(b, o.denoisers.plan, dv);
      const { total, perLayer } = addDenoiseLosses(
        b,
        o.denoisers.plan,
        dv,
        noiseSeed(cfg.seed, epoch, 3),
      );
      denoise = { total, names: perLayer.map((v) => v.name) };
    }
    const taskLoss = addTaskLoss(b, b.value(tg.logits.name), b.value(tg.preNeckFeature.name), {
      task,
      numClasses: def.numClasses,
      tripletMargin: cfg.tripletMargin,
    });
    b.output(
      denoise ? b.add(taskLoss, b.mul(denoise.total, b.scalar(cfg.denoiseWeight))) : taskLoss,
      'loss',
    );
    return {
      model: finishSurgery(built.model, b),
      loss: 'loss',
      trainable: bNames,
      fed: [...built.buffers, ...dNames],
      bufferUpdates: new Map([...tg.ctx.bufferUpdates].map(([k, v]) => [k, v.name])),
      extraOutputs: denoise?.names ?? [],
    };
  };
  const d = o.denoisers?.store;
  return {
    name: 'backbone',
    updates: ['backbone'],
    objective: graphObjective({
      // With denoisers the graph bakes in their values and a per-epoch noise seed.
      graph: o.denoisers ? graph : graph(0),
      feeds: taskFeeds({
        data: o.data,
        task,
        numClasses: def.numClasses,
        inputShape: [o.data.channels, o.data.height, o.data.width],
        labelSmoothing: cfg.labelSmoothing,
        augment: o.augment,
        preprocess: o.preprocess,
        dropout: tg.ctx,
      }),
      threads: cfg.threads,
      resumableMidEpoch: !o.denoisers,
    }),
    params: { get: (n: string) => (d?.has(n) ? d.get(n) : o.backbone.get(n)) },
    optimizer: new AdamW(o.backbone, defaultDecayGroups(bNames, cfg.weightDecay ?? 0.05, bShapes)),
    lr: o.lr,
    batches: taskBatches(o.data, task, cfg.batchSize, cfg.pkP),
    streams: sharedDrawStreams(cfg.seed, (e) => `backbone-epoch-${e}`),
  };
}

/**
 * Which epochs are denoiser phases (A, first) and the two schedules: A's label-free cosine
 * over all A steps, B's cosine from the backbone rate to 0 over all B steps (counted as
 * ⌈n / batch⌉ per epoch, also for PK batches).
 */
function labelAugSchedules(
  cfg: LabelAugConfig,
  n: number,
): { isA: (e: number) => boolean; lrA: LrSchedule; lrB: LrSchedule } {
  const stepsPerEpoch = Math.ceil(n / cfg.batchSize);
  const isA = (e: number) => Math.floor(e / cfg.phaseEpochs) % 2 === 0;
  const aEpochs = Array.from({ length: cfg.epochs }, (_, e) => isA(e)).filter(Boolean).length;
  const bEpochs = cfg.epochs - aEpochs;
  return {
    isA,
    lrA: labelFreeLr(cfg, Math.max(1, aEpochs * stepsPerEpoch)),
    lrB: cosineWithWarmup({
      baseLr: cfg.backboneLr ?? cfg.lr,
      minLr: 0,
      warmupSteps: 0,
      totalSteps: Math.max(1, bEpochs * stepsPerEpoch),
    }),
  };
}

/** The plan of the training graph: the same layers at the same timesteps as `plan`. */
function trainingPlan(tg: BackboneGraph, plan: ConversionPlan, filter: string): ConversionPlan {
  const trainPlan = planConversion(tg.b.graph, {
    filter,
    timesteps: plan.timestepMode,
    schedule: {
      timesteps: plan.schedule.timesteps,
      betaStart: plan.schedule.betaStart,
      betaEnd: plan.schedule.betaEnd,
    },
  });
  const key = (q: ConversionPlan) => q.layers.map((p) => `${p.layer.name}@${p.t}`).join();
  if (key(trainPlan) !== key(plan))
    throw new ModelError('the training graph selects different layers than the evaluation graph');
  return trainPlan;
}

/**
 * Label-augmented DenoiseRep: alternate every `phaseEpochs` epochs between
 * phase A (denoisers train, backbone frozen; loss = task + λ Σ denoising, where the task
 * loss reaches no trainable weight and so only λ Σ denoising is differentiated) and
 * phase B (denoisers frozen, backbone trains with the forward through the fused weights
 * W'(W), loss = task + λ Σ denoising). Starts with phase A. A two-phase configuration of
 * `runTraining`.
 *
 * With `control: true` it trains the arm's compute-matched control instead: the same
 * epochs, the same backbone steps on the same batches in the same order with the same
 * augmentation and dropout draws and the same learning rate at each step, but no
 * denoisers and no denoising loss (phase A epochs train nothing). The two runs' `compute`
 * records are then equal in backbone steps, learning rates and `backboneTrace`.
 * @param opts.def - the backbone architecture (a training graph is built from it)
 * @param opts.backbone - current backbone parameter and buffer values (trained in place)
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
  /** Every optimiser step (phase, learning rate, batch, feeds) as the loop reports it. */
  onStep?: (s: StepInfo) => void;
  /** Train the compute-matched control (no denoisers) instead of the arm. */
  control?: boolean;
}): Promise<{
  values: Map<string, Tensor>;
  backbone: ParamStore;
  history: EpochRecord[];
  compute: ComputeRecord;
}> {
  const { def, config: cfg, plan } = opts;
  const names = denoiserParamNames(plan);
  const dStore = ParamStore.fromTensors(opts.init);
  const dShapes = new Map(names.map((n) => [n, dStore.get(n).shape]));
  // The backbone's training graph; the plan is read from it before it is built.
  const tg = buildBackbone(def, 'train', cfg.seed);
  const trainPlan = trainingPlan(tg, plan, opts.filter);
  const built = tg.b.build();
  const evalModel = buildBackbone(def, 'eval', cfg.seed).b.build().model;
  const stored = [...built.params, ...built.buffers];
  const { isA, lrA, lrB } = labelAugSchedules(cfg, opts.data.size);
  const phaseA = labelFreePhase({
    name: 'denoisers',
    model: () => withValues(evalModel, opts.backbone, stored),
    input: evalModel.graph.inputs[0],
    plan,
    store: dStore,
    optimizer: new AdamW(dStore, defaultDecayGroups(names, cfg.weightDecay ?? 0, dShapes)),
    lr: lrA,
    data: opts.data,
    batchSize: cfg.batchSize,
    seed: cfg.seed,
    weight: cfg.denoiseWeight,
    preprocess: opts.preprocess,
    threads: cfg.threads,
  });
  const phaseB = backbonePhase({
    def,
    tg,
    built,
    backbone: opts.backbone,
    data: opts.data,
    cfg,
    lr: lrB,
    augment: opts.augment,
    preprocess: opts.preprocess,
    denoisers: opts.control ? null : { store: dStore, plan: trainPlan },
  });
  const out = await runTraining<EpochRecord>({
    epochs: cfg.epochs,
    phases: [phaseA, phaseB],
    phaseOf: (e) => (isA(e) ? (opts.control ? null : 0) : 1),
    log: opts.log,
    onStep: opts.onStep,
    epochRecord: (s) => denoiseRecord(s, plan),
  });
  return {
    values: dStore.toTensors(names),
    backbone: opts.backbone,
    history: out.history,
    compute: out.compute,
  };
}
