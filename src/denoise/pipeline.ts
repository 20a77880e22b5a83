/**
 * The one DenoiseRep pipeline, for the command line and the experiments alike:
 *
 *   plan → statistics or training → fuse → verify → diagnostics → files
 *
 * in three steps that can be called one by one ({@link fitAndFuse}, {@link checkFusion},
 * {@link writePipelineFiles}: the demo fits three arms, measures each, then checks them)
 * or chained by {@link runPipeline} (what `fit` does). Everything here works on models and
 * data sets in memory; reading a user's files and checking their paths is the caller's.
 */
import { feedBatches, type ImageDataset, subset } from '../data/dataset.js';
import type { ModelDef } from '../models/types.js';
import type { ParamStore } from '../models/params.js';
import type { Model } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import { writeModel } from '../onnx/serialize.js';
import type { ComputeRecord } from '../train/compute.js';
import { evalModelWith } from '../train/loop.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.js';
import { DataError } from '../util/errors.js';
import type { MomentAccumulator } from './closed-form.js';
import { writeDenoisers } from './denoiser-file.js';
import { diagnoseFusion, type LayerReport, spectraSvg, svgToPng } from './diagnostics.js';
import { type ClosedFormReport, collectMoments, fitClosedForm } from './fit.js';
import { type FuseReport, fuseWithReport, fusionProducts, fusionWeight } from './fuse.js';
import { DenseKernels } from './linalg-compiled.js';
import { type ConversionPlan, initDenoisers, zeroDenoisers } from './plan.js';
import {
  type EpochRecord,
  type LabelAugConfig,
  measureDenoisingLoss,
  type Preprocess,
  type TrainLog,
  trainLabelAugmented,
  trainLabelFree,
} from './train.js';
import { type VerifyOptions, type VerifyReport, verifyFusion } from './verify.js';

/** A stage of the pipeline, as reported to a progress callback. */
export type PipelineStage = 'statistics' | 'training' | 'fuse' | 'verify' | 'diagnostics' | 'write';

/**
 * Progress of a pipeline: units done out of all (images for `statistics`, epochs for
 * `training`, 0 of 1 then 1 of 1 for the other stages).
 */
export interface ProgressEvent {
  stage: PipelineStage;
  done: number;
  total: number;
}

/** Settings every step takes. */
export interface PipelineCommon {
  /** Seed of every draw: initial denoisers, noise of the training and of the loss diagnostics. */
  seed: number;
  /** ONNX Runtime intra-op threads (default: every core). */
  threads?: number;
  /**
   * Worker threads fitting the closed form's layers in parallel, sharing `threads`
   * (default 2 where there are 2 threads or more; 0: every layer on the calling thread;
   * see {@link fitClosedForm} for their memory on glibc).
   */
  fitWorkers?: number;
  /** How messages name the model. */
  source?: string;
  onProgress?: (e: ProgressEvent) => void;
}

/** Images fed to the model's one input, batch by batch (optionally one shard of them). */
export interface ImageFeeds {
  data: ImageDataset;
  inputName: string;
  batchSize: number;
  preprocess?: Preprocess;
  /** Every `count`-th image from `index` (statistics computed on several machines). */
  shard?: { index: number; count: number };
}

/** How the denoisers are obtained. */
export type FitMethod =
  /** The MSE-optimal denoisers from one pass of input moments. */
  | { kind: 'closed-form'; images: ImageFeeds; ridge?: number }
  /** The same from moments computed before (summed shards). */
  | { kind: 'closed-form-stats'; stats: Map<string, MomentAccumulator>; ridge?: number }
  /** The paper's label-free training (L1 + MSE noise prediction, backbone frozen). */
  | { kind: 'sgd'; images: ImageFeeds; epochs: number; lr: number; log?: (r: TrainLog) => void }
  /**
   * Label-augmented training of a preset backbone: alternating denoiser and backbone
   * phases; the backbone that comes out is the one the denoisers are fused into.
   */
  | {
      kind: 'label-aug';
      def: ModelDef;
      backbone: ParamStore;
      data: ImageDataset;
      filter: string;
      config: Omit<LabelAugConfig, 'seed' | 'threads'>;
      log?: (r: TrainLog) => void;
    };

/** What fitting and fusing produced. */
export interface FusedDenoisers {
  /** The unfused model the denoisers belong to: the input model, or a retrained backbone. */
  original: Model;
  plan: ConversionPlan;
  /** The fitted denoisers, by parameter name. */
  values: Map<string, Tensor>;
  /** The denoisers the fit started from (zero for the closed form): "before" in the diagnostics. */
  start: Map<string, Tensor>;
  /** `original` with the denoisers fused into its weights: same graph, new values. */
  fused: Model;
  /** The copies fusion added for layers whose weight or bias was shared (or tied). */
  fuseReport: FuseReport;
  /** Per layer for the closed form (samples, regularisation); per epoch for training. */
  fit: ClosedFormReport[] | EpochRecord[];
  /** What a user should know about the fit (too few samples, a singular covariance). */
  warnings: string[];
  /** The compute a trained fit spent (the training loop's record); absent for the closed form. */
  compute?: ComputeRecord;
  /**
   * Closed form: singular values of each layer's fused map, from the eigenvalues of its
   * input covariance (so the diagnostics need no decomposition of their own).
   */
  spectra?: Map<string, Float64Array>;
}

/** The warnings of a closed-form fit: layers with few samples, or a singular covariance. */
function closedFormWarnings(plan: ConversionPlan, report: ClosedFormReport[]): string[] {
  const out: string[] = [];
  for (const r of report) {
    const dim = plan.layers.find((p) => p.layer.name === r.layer)!.dim;
    if (r.samples < 4 * dim)
      out.push(
        `layer '${r.layer}': only ${r.samples} feature vectors for ${dim} dimensions; unseen directions will be shrunk (use more images)`,
      );
    if (r.regularised)
      out.push(
        `layer '${r.layer}': covariance is singular; regularised with diagonal jitter ${r.jitter.toExponential(2)}`,
      );
  }
  return out;
}

/** Images a pass over `f` feeds (its shard only). */
function feedCount(f: ImageFeeds): number {
  if (!f.shard) return f.data.size;
  return Math.max(0, Math.ceil((f.data.size - f.shard.index) / f.shard.count));
}

/**
 * One pass of per-layer input moments over some images (the closed form's statistics),
 * reporting images done as `statistics` progress.
 * @param model - the backbone
 * @param plan - selected layers
 * @param images - what to feed, and which shard
 */
export async function collectStatistics(
  model: Model,
  plan: ConversionPlan,
  images: ImageFeeds,
  common: Omit<PipelineCommon, 'seed'>,
): Promise<Map<string, MomentAccumulator>> {
  const total = feedCount(images);
  let done = 0;
  common.onProgress?.({ stage: 'statistics', done, total });
  const { data, inputName, batchSize, preprocess, shard } = images;
  const session = { threads: common.threads, ...(common.source ? { source: common.source } : {}) };
  return collectMoments(model, plan, feedBatches(data, inputName, batchSize, preprocess, shard), {
    session,
    onBatch: (n) => common.onProgress?.({ stage: 'statistics', done: (done += n), total }),
  });
}

/** What fitting gave, with the fusion products when the fit made them. */
type Fitted = Omit<FusedDenoisers, 'fused' | 'fuseReport' | 'warnings'> & {
  products?: Map<string, Float64Array>;
};

/** The fit step: denoiser values, where they started, and the model they belong to. */
async function fitDenoisers(
  model: Model,
  plan: ConversionPlan,
  method: FitMethod,
  common: PipelineCommon,
  kernels: DenseKernels,
): Promise<Fitted> {
  const { seed, threads } = common;
  switch (method.kind) {
    case 'closed-form':
    case 'closed-form-stats': {
      const stats =
        method.kind === 'closed-form'
          ? await collectStatistics(model, plan, method.images, common)
          : method.stats;
      const { values, report, spectra, products } = await fitClosedForm(plan, stats, {
        ridge: method.ridge,
        kernels,
        workers: common.fitWorkers,
        // statistics computed here are the pipeline's own: free them layer by layer
        consume: method.kind === 'closed-form',
        // each layer's fusion product (W·Wd, Wd·W for a conv) made while its Wd is at hand
        // (on the workers, in parallel)
        weightOf: (p) => fusionWeight(model, p),
      });
      const start = zeroDenoisers(values);
      return { original: model, plan, values, start, fit: report, spectra, products };
    }
    case 'sgd': {
      const { data, batchSize, preprocess } = method.images;
      const res = await trainLabelFree({
        model,
        plan,
        init: initDenoisers(plan, seed),
        data,
        preprocess,
        config: { epochs: method.epochs, batchSize, lr: method.lr, seed, threads },
        log: trainingLog(method.epochs, common, method.log),
      });
      const start = initDenoisers(plan, seed);
      return {
        original: model,
        plan,
        values: res.values,
        start,
        fit: res.history,
        compute: res.compute,
      };
    }
    case 'label-aug': {
      const res = await trainLabelAugmented({
        def: method.def,
        backbone: method.backbone,
        plan,
        init: initDenoisers(plan, seed),
        data: method.data,
        filter: method.filter,
        config: { ...method.config, seed, threads },
        log: trainingLog(method.config.epochs, common, method.log),
      });
      const original = evalModelWith(method.def, res.backbone);
      const start = initDenoisers(plan, seed);
      return {
        original,
        plan,
        values: res.values,
        start,
        fit: res.history,
        compute: res.compute,
      };
    }
  }
}

/** A training log that also reports finished epochs as `training` progress. */
function trainingLog(
  epochs: number,
  common: PipelineCommon,
  log?: (r: TrainLog) => void,
): ((r: TrainLog) => void) | undefined {
  if (!log && !common.onProgress) return undefined;
  return (r) => {
    log?.(r);
    if (r.kind === 'epoch' && typeof r.epoch === 'number')
      common.onProgress?.({ stage: 'training', done: r.epoch + 1, total: epochs });
  };
}

/**
 * Plan given, the first half of the pipeline: statistics or training, then fusion.
 * @param model - the trained backbone (not modified)
 * @param plan - selected layers and timesteps
 * @param method - closed form (from images or from statistics), SGD, or label-augmented
 * @example
 * const plan = planConversion(model.graph, { filter: 'all' });
 * const r = await fitAndFuse(model, plan, { kind: 'closed-form', images: { data, inputName: 'input', batchSize: 64 } }, { seed: 0 });
 * writeModel('fused.onnx', r.fused);
 */
export async function fitAndFuse(
  model: Model,
  plan: ConversionPlan,
  method: FitMethod,
  common: PipelineCommon,
): Promise<FusedDenoisers> {
  // One set of compiled float64 kernels for the fit's and the fusion's linear algebra.
  const kernels = new DenseKernels({ threads: common.threads });
  let fitted: Omit<Fitted, 'products'>;
  let fusion: ReturnType<typeof fuseWithReport>;
  try {
    const { products: made, ...rest } = await fitDenoisers(model, plan, method, common, kernels);
    fitted = rest;
    common.onProgress?.({ stage: 'fuse', done: 0, total: 1 });
    const products = made ?? (await fusionProducts(fitted.original, plan, fitted.values, kernels));
    fusion = fuseWithReport(fitted.original, plan, fitted.values, { products });
    common.onProgress?.({ stage: 'fuse', done: 1, total: 1 });
  } finally {
    await kernels.release();
  }
  const { model: fused, report: fuseReport } = fusion;
  const warnings =
    method.kind === 'closed-form' || method.kind === 'closed-form-stats'
      ? closedFormWarnings(plan, fitted.fit as ClosedFormReport[])
      : [];
  return { ...fitted, fused, fuseReport, warnings };
}

/** What {@link checkFusion} compares and measures. */
export interface CheckOptions {
  /** Verify the fused model against the unfused one run with explicit denoising steps. */
  verify?: Omit<VerifyOptions, 'original' | 'fused' | 'plan' | 'denoisers' | 'threads'> & {
    /** Throw a DataError (before any diagnostics or file) when verification fails. */
    requireOk?: boolean;
  };
  /**
   * Denoising loss before and after the fit on the first `sampleSize` (default 512) images,
   * with the same noise draws; without it the diagnostics hold the spectra only.
   */
  losses?: { data: ImageDataset; batchSize: number; preprocess?: Preprocess; sampleSize?: number };
}

/** What {@link checkFusion} found. */
export interface CheckResult {
  verification?: VerifyReport;
  /** Per layer: spectrum of c3 I − c1 Wd, weight change, denoising loss before and after. */
  layers: LayerReport[];
}

/** Per-layer denoising loss of the starting and of the fitted denoisers. */
async function lossesBeforeAfter(
  r: FusedDenoisers,
  o: NonNullable<CheckOptions['losses']>,
  common: PipelineCommon,
): Promise<{ lossBefore: Record<string, number>; lossAfter: Record<string, number> }> {
  const n = Math.min(o.sampleSize ?? 512, o.data.size);
  const m = {
    model: r.original,
    plan: r.plan,
    data: subset(
      o.data,
      Int32Array.from({ length: n }, (_, i) => i),
    ),
    batchSize: o.batchSize,
    seed: common.seed,
    preprocess: o.preprocess,
    threads: common.threads,
  };
  const lossBefore = await measureDenoisingLoss({ ...m, values: r.start });
  const lossAfter = await measureDenoisingLoss({ ...m, values: r.values });
  return { lossBefore, lossAfter };
}

/**
 * The second half of the pipeline: verification, then per-layer diagnostics.
 * @param r - what {@link fitAndFuse} produced
 * @param o - verification inputs and tolerance, and data for the loss diagnostics
 * @throws DataError when `verify.requireOk` is set and the fused model fails verification
 */
export async function checkFusion(
  r: FusedDenoisers,
  o: CheckOptions,
  common: PipelineCommon,
): Promise<CheckResult> {
  let verification: VerifyReport | undefined;
  if (o.verify) {
    common.onProgress?.({ stage: 'verify', done: 0, total: 1 });
    const { requireOk, ...v } = o.verify;
    verification = await verifyFusion({
      ...v,
      original: r.original,
      fused: r.fused,
      plan: r.plan,
      denoisers: r.values,
      threads: common.threads,
    });
    if (requireOk && !verification.ok)
      throw new DataError(`fused model failed verification: ${verification.failures.join('; ')}`);
    common.onProgress?.({ stage: 'verify', done: 1, total: 1 });
  }
  common.onProgress?.({ stage: 'diagnostics', done: 0, total: 1 });
  const losses = o.losses ? await lossesBeforeAfter(r, o.losses, common) : {};
  const layers = diagnoseFusion({
    plan: r.plan,
    original: r.original,
    fused: r.fused,
    denoisers: r.values,
    spectra: r.spectra,
    ...losses,
  });
  common.onProgress?.({ stage: 'diagnostics', done: 1, total: 1 });
  return { verification, layers };
}

/** The files a pipeline writes (each optional; every write is atomic). */
export interface PipelineFiles {
  /** The fused model (.onnx). */
  model?: string;
  /** The denoisers (safetensors), with the plan's layer filter and extra metadata. */
  denoisers?: { path: string; filter: string; meta?: Record<string, string> };
  /** The diagnostics as JSON (its content made from the check), and the spectra as SVG and PNG. */
  diagnostics?: {
    json: string;
    svg: string;
    png: string;
    /** Heading of the spectra plot (default: spectraSvg's). */
    title?: string;
    /** The JSON written, from what was fitted and found. */
    content: (r: FusedDenoisers, c: CheckResult) => unknown;
  };
}

/**
 * The last step of the pipeline: writes the fused model, the denoisers and the diagnostics.
 * @param r - what {@link fitAndFuse} produced
 * @param c - what {@link checkFusion} found
 * @param files - where to write what
 */
export async function writePipelineFiles(
  r: FusedDenoisers,
  c: CheckResult,
  files: PipelineFiles,
  common: Pick<PipelineCommon, 'onProgress'> = {},
): Promise<void> {
  common.onProgress?.({ stage: 'write', done: 0, total: 1 });
  if (files.model) writeModel(files.model, r.fused);
  if (files.denoisers) {
    const { path, filter, meta } = files.denoisers;
    writeDenoisers(path, r.plan, filter, r.values, meta);
  }
  if (files.diagnostics) {
    const d = files.diagnostics;
    writeJsonAtomic(d.json, d.content(r, c));
    const svg = spectraSvg(c.layers, ...(d.title === undefined ? [] : [d.title]));
    writeFileAtomic(d.svg, svg);
    writeFileAtomic(d.png, await svgToPng(svg));
  }
  common.onProgress?.({ stage: 'write', done: 1, total: 1 });
}

/** Everything {@link runPipeline} does. */
export interface PipelineOptions extends PipelineCommon, CheckOptions {
  model: Model;
  plan: ConversionPlan;
  method: FitMethod;
  files?: PipelineFiles;
  /** Called once the denoisers are fitted and fused, before verification. */
  onFused?: (r: FusedDenoisers) => void;
}

/** What {@link runPipeline} produced and found. */
export type PipelineResult = FusedDenoisers & CheckResult;

/**
 * The whole pipeline: statistics or training, fuse, verify, diagnostics, files.
 * @example
 * const plan = planConversion(model.graph, { filter: 'all' });
 * const images = { data, inputName: 'input', batchSize: 64 };
 * const r = await runPipeline({
 *   model, plan, seed: 0,
 *   method: { kind: 'closed-form', images },
 *   verify: { inputs: feedBatches(data, 'input', 64).next().value!, requireOk: true },
 *   losses: { data, batchSize: 64 },
 *   files: { model: 'fused.onnx' },
 * });
 */
export async function runPipeline(o: PipelineOptions): Promise<PipelineResult> {
  const fused = await fitAndFuse(o.model, o.plan, o.method, o);
  o.onFused?.(fused);
  const checked = await checkFusion(fused, o, o);
  if (o.files) await writePipelineFiles(fused, checked, o.files, o);
  return { ...fused, ...checked };
}
