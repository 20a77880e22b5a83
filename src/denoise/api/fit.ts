// `fit`: label-free DenoiseRep on a model file and a folder of images, in one call — what
// `denoiserep fit` does. Options are checked, then every path (before any work), then the
// model is planned, fitted, fused, verified, diagnosed and written by the one pipeline.
import { feedBatches, type ImageDataset } from '../../data/dataset.js';
import {
  dataSourcePath,
  imageInput,
  loadInputImages,
  type Preprocess,
} from '../../data/model-inputs.js';
import { isModelFile, loadModelArg } from '../../models/load.js';
import type { Model } from '../../onnx/ir.js';
import { DataError, UsageError } from '../../util/errors.js';
import { checkOutputPaths, type FlagPath } from '../../util/output-paths.js';
import type { MomentAccumulator } from '../closed-form.js';
import type { LayerReport } from '../diagnostics.js';
import { type ClosedFormReport, mergeMoments, readMoments, writeMoments } from '../fit.js';
import { assertFiniteLayers, type FuseReport, type TensorCopy } from '../fuse.js';
import {
  collectStatistics,
  type FitMethod,
  type ImageFeeds,
  type PipelineResult,
  runPipeline,
} from '../pipeline.js';
import { type ConversionPlan, planConversion } from '../plan.js';
import { parseTimestepMode, type TimestepFlag, type TimestepMode } from '../schedule.js';
import type { SkippedLayer } from '../select.js';
import type { EpochRecord } from '../train.js';
import type { VerifyReport } from '../verify.js';
import {
  checkRanged,
  checkString,
  type CommonOptions,
  commonSettings,
  type ImageOptions,
  imageSettings,
} from './options.js';

/** One shard of the images: every `count`-th image from `index`. */
export interface Shard {
  index: number;
  count: number;
}

/**
 * Options of {@link fit}: the flags of `denoiserep fit`, camel-cased, with numbers and
 * arrays where the command line takes strings.
 */
export interface FitOptions extends CommonOptions, ImageOptions {
  /** The fused model to write (required, unless `shard` writes statistics instead). Never an input. */
  out?: string;
  /** Layers: `'all'` (default), `'mlp'`, `'linear'`, `'conv'`, or comma-separated globs. */
  layers?: string;
  /**
   * Timestep assignment: `'paper'` (N..1, default), `'public-code'`, or
   * `'linear:<first>:<last>'` (spread evenly from the first layer to the last).
   */
  timesteps?: TimestepFlag;
  /** Multiple of the paper's betas (default 1): the noise level the denoisers remove. */
  noiseScale?: number;
  /**
   * Also fit layers whose weight another layer reads (tied weights), each fused into its own
   * copy (more parameters, reported). Default: skip them, with a reason in the report.
   */
  untie?: boolean;
  /** `'closed-form'` (default: the MSE-optimal denoisers) or `'sgd'` (the paper's L1+MSE training). */
  mode?: 'closed-form' | 'sgd';
  /** SGD: epochs (default 5). */
  epochs?: number;
  /** Images per batch (default 32). */
  batchSize?: number;
  /** SGD: AdamW learning rate (default 1e-3). */
  lr?: number;
  /** Closed form: extra ridge on the diagonal (default 0). */
  ridge?: number;
  /**
   * Closed form: worker threads fitting layers in parallel, sharing `threads` (default 2
   * where there are 2 threads or more; 0: every layer on the calling thread).
   */
  workers?: number;
  /** Closed form: compute statistics of this shard only and write them to `statsOut`. */
  shard?: string | Shard;
  /** Where `shard` writes its statistics. */
  statsOut?: string;
  /**
   * Closed form: fit from these statistics files (the shards of one split, summed) instead
   * of images; `images`/`data`, if given, then only verify the fused model.
   */
  fromStats?: string | string[];
  /** Per-layer diagnostics as JSON; the spectra go beside it as .svg and .png. */
  report?: string;
  /** Also write the fitted denoisers (safetensors, for `fuse` and `verify`). */
  denoisersOut?: string;
  /** Largest accepted relative error of the fused model against the unfused one (default 1e-4). */
  tolerance?: number;
  /** Called with each warning (few samples for a layer, a singular covariance). */
  onWarning?: (message: string) => void;
}

/** Options of a {@link fit} that writes one shard's statistics. */
export type FitShardOptions = FitOptions & { shard: string | Shard; statsOut: string };

/** The verification of a fit, in brief. */
export interface FitVerification {
  ok: boolean;
  topologyIdentical: boolean;
  /** Largest relative error over the model's outputs. */
  maxRelOutput: number;
  /** Largest relative error over the fused layers' outputs. */
  maxRelLayer: number;
}

/** What {@link fit} did when it wrote a fused model. */
export interface FitReport {
  kind: 'fused';
  /** The model, as messages name it. */
  model: string;
  out: string;
  mode: 'closed-form' | 'sgd';
  /** Per fused layer: timestep, spectrum of c3 I − c1 Wd, weight change, loss before and after. */
  layers: LayerReport[];
  /** Images used (absent when fitted from statistics files). */
  images?: number;
  /** MatMul/Gemm/Conv layers not converted, each with its reason (tied, depthwise, ...). */
  skippedLayers: SkippedLayer[];
  /** Initializers fusion added so that no fused tensor is shared with another reader. */
  copies: TensorCopy[];
  /** Elements in those copies; `untiedParameters` of them for tied weights (`untie`). */
  addedParameters: number;
  untiedParameters: number;
  /** Images skipped as undecodable (`skipCorrupt`). */
  skipped: number;
  /** Absent when fitted from statistics files without images to compare on. */
  verification?: FitVerification;
  /** Per layer for the closed form; per epoch for SGD. */
  fit: ClosedFormReport[] | EpochRecord[];
  warnings: string[];
  denoisersOut?: string;
  report?: string;
}

/** What {@link fit} did when it wrote a shard's statistics. */
export interface StatisticsReport {
  kind: 'statistics';
  model: string;
  statsOut: string;
  /** The shard as given (`'0/4'`) or written `i/n`. */
  shard: string;
  /** Feature vectors per layer in this shard (positions × images). */
  images?: number;
  skipped: number;
}

/** Parses `i/n` shard notation (or checks a shard object). */
export function parseShard(v: string | Shard): Shard {
  if (typeof v === 'string') {
    const m = /^(\d+)\/(\d+)$/.exec(v);
    if (!m) throw new UsageError(`--shard must look like i/n (e.g. 0/4), got '${v}'`);
    v = { index: Number(m[1]), count: Number(m[2]) };
  }
  const { index, count } = v;
  if (
    !Number.isInteger(index) ||
    !Number.isInteger(count) ||
    index < 0 ||
    count < 1 ||
    index >= count
  )
    throw new UsageError(`--shard ${index}/${count}: need 0 <= i < n`);
  return { index, count };
}

/** The checked settings of a fit. */
interface FitSettings {
  seed: number;
  threads?: number;
  mode: 'closed-form' | 'sgd';
  layers: string;
  timesteps: TimestepMode;
  noiseScale: number;
  shard?: Shard;
  fromStats?: string[];
  epochs: number;
  batchSize: number;
  lr: number;
  ridge: number;
  tolerance: number;
  workers?: number;
}

/** Checks the options alone (no file touched). */
function fitSettings(o: FitOptions): FitSettings {
  const { seed, threads } = commonSettings(o);
  const mode = o.mode ?? 'closed-form';
  if (mode !== 'closed-form' && mode !== 'sgd')
    throw new UsageError(`--mode must be closed-form or sgd, got '${String(mode)}'`);
  for (const k of ['out', 'statsOut', 'report', 'denoisersOut', 'layers'] as const)
    checkString(k, o[k]);
  for (const k of [
    'epochs',
    'batchSize',
    'lr',
    'ridge',
    'tolerance',
    'noiseScale',
    'workers',
  ] as const)
    checkRanged(k, o[k]);
  imageSettings(o); // checked here too, so that a bad --size or --std fails before any work
  checkString('timesteps', o.timesteps);
  const timesteps = parseTimestepMode(o.timesteps ?? 'paper');
  const noiseScale = o.noiseScale ?? 1;
  const shard = o.shard === undefined ? undefined : parseShard(o.shard);
  if (shard && !o.statsOut) throw new UsageError('--shard needs --stats-out <file>');
  if (shard && (mode !== 'closed-form' || o.fromStats !== undefined))
    throw new UsageError('--shard works with --mode closed-form on images only');
  if (!shard && !o.out) throw new UsageError('--out <file> is required');
  const fromStats =
    o.fromStats === undefined
      ? undefined
      : [o.fromStats].flat().flatMap((s) => s.split(',').map((x) => x.trim()));
  if (fromStats && mode !== 'closed-form')
    throw new UsageError('--from-stats works with --mode closed-form only');
  if (!fromStats && !o.images && !o.data)
    throw new UsageError('--images <dir> or --data <src> is required (or --from-stats)');
  return {
    seed,
    threads,
    mode,
    layers: o.layers ?? 'all',
    timesteps,
    noiseScale,
    shard,
    fromStats,
    epochs: o.epochs ?? 5,
    batchSize: o.batchSize ?? 32,
    lr: o.lr ?? 1e-3,
    ridge: o.ridge ?? 0,
    workers: o.workers,
    tolerance: o.tolerance ?? 1e-4,
  };
}

/** The files a fit reads and writes, named by their flags. */
function fitPaths(model: string, o: FitOptions, s: FitSettings): [FlagPath[], FlagPath[]] {
  const inputs: FlagPath[] = [];
  if (isModelFile(model)) inputs.push({ flag: '<model>', path: model });
  for (const f of s.fromStats ?? []) inputs.push({ flag: '--from-stats', path: f });
  for (const f of [o.images ?? []].flat()) inputs.push({ flag: '--images', path: f });
  const data = dataSourcePath(o.data);
  if (data) inputs.push({ flag: '--data', path: data });
  if (s.shard) return [inputs, [{ flag: '--stats-out', path: o.statsOut! }]];
  const outputs: FlagPath[] = [{ flag: '--out', path: o.out! }];
  if (o.denoisersOut) outputs.push({ flag: '--denoisers-out', path: o.denoisersOut });
  if (o.report) {
    const stem = reportStem(o.report);
    outputs.push({ flag: '--report', path: o.report });
    outputs.push(
      { flag: '--report', path: `${stem}.svg` },
      { flag: '--report', path: `${stem}.png` },
    );
  }
  return [inputs, outputs];
}

function reportStem(report: string): string {
  return report.replace(/\.json$/, '');
}

/** Summed statistics files, checked to cover every planned layer. */
function statsFromFiles(files: string[], plan: ConversionPlan): Map<string, MomentAccumulator> {
  const stats = mergeMoments(files.map((f) => ({ source: f, ...readMoments(f) })));
  for (const p of plan.layers) {
    if (!stats.has(p.layer.name))
      throw new DataError(
        `statistics files lack layer '${p.layer.name}' (same model and --layers?)`,
      );
  }
  return stats;
}

/** What the report says about skipped layers and shared tensors. */
function sharing(
  plan: ConversionPlan,
  f: FuseReport,
): Pick<FitReport, 'skippedLayers' | 'copies' | 'addedParameters' | 'untiedParameters'> {
  return {
    skippedLayers: plan.skipped,
    copies: f.copies,
    addedParameters: f.addedParameters,
    untiedParameters: f.untiedParameters,
  };
}

/** The verification report in brief. */
function briefVerification(v: VerifyReport): FitVerification {
  return {
    ok: v.ok,
    topologyIdentical: v.topology.identical,
    maxRelOutput: Math.max(...v.outputs.map((e) => e.maxRel)),
    maxRelLayer: Math.max(...v.layers.map((e) => e.maxRel)),
  };
}

/** A fit's model, plan, images and what the pipeline feeds. */
interface FitInputs {
  model: Model;
  source: string;
  plan: ConversionPlan;
  data?: ImageDataset;
  skipped: number;
  prep?: Preprocess;
  feeds?: ImageFeeds;
}

async function loadFitInputs(modelArg: string, o: FitOptions, s: FitSettings): Promise<FitInputs> {
  const { model, source } = await loadModelArg(modelArg, s.seed);
  const plan = planConversion(model.graph, {
    filter: s.layers,
    timesteps: s.timesteps,
    schedule: { noiseScale: s.noiseScale },
    untie: o.untie ?? false,
    source,
  });
  assertFiniteLayers(model, plan); // before the statistics pass, not after it
  const input = imageInput(model, source);
  // From statistics, images are optional: they only verify the fused model.
  if (s.fromStats && !o.images && !o.data) return { model, source, plan, skipped: 0 };
  const { data, skipped, prep } = await loadInputImages(model, source, imageSettings(o), 'train');
  const feeds = { data, inputName: input.name, batchSize: s.batchSize, preprocess: prep };
  return { model, source, plan, data, skipped, prep, feeds };
}

/** The shard branch: one pass of statistics over this shard's images, written to `statsOut`. */
async function fitShard(
  o: FitShardOptions,
  s: FitSettings,
  x: FitInputs,
): Promise<StatisticsReport> {
  const stats = await collectStatistics(
    x.model,
    x.plan,
    { ...x.feeds!, shard: s.shard },
    { threads: s.threads, source: x.source, onProgress: o.onProgress },
  );
  const shard = typeof o.shard === 'string' ? o.shard : `${s.shard!.index}/${s.shard!.count}`;
  writeMoments(o.statsOut, x.plan, stats, { model: x.source, shard });
  const images = [...stats.values()][0]?.count;
  return {
    kind: 'statistics',
    model: x.source,
    statsOut: o.statsOut,
    shard,
    images,
    skipped: x.skipped,
  };
}

/**
 * Images a fit verifies its fused model on (the first ones): fusion is exact algebra, so a
 * wrong fused weight shows on any input; more images only repeat the check, and each costs
 * a pass of the model with its denoising steps and one of the fused model (a ViT-B at 224:
 * about 1 s per image here). `verify` checks every image it is given.
 */
export const FIT_VERIFY_IMAGES = 8;

/** The pipeline run of a fit: method, verification, diagnostics and files from the options. */
function fitPipeline(o: FitOptions, s: FitSettings, x: FitInputs): Promise<PipelineResult> {
  const method: FitMethod = s.fromStats
    ? { kind: 'closed-form-stats', stats: statsFromFiles(s.fromStats, x.plan), ridge: s.ridge }
    : s.mode === 'closed-form'
      ? { kind: 'closed-form', images: x.feeds!, ridge: s.ridge }
      : { kind: 'sgd', images: x.feeds!, epochs: s.epochs, lr: s.lr };
  const data = x.data;
  const first =
    data &&
    feedBatches(data, x.feeds!.inputName, Math.min(FIT_VERIFY_IMAGES, data.size), x.prep).next()
      .value!;
  const report = o.report;
  return runPipeline({
    model: x.model,
    plan: x.plan,
    method,
    seed: s.seed,
    threads: s.threads,
    fitWorkers: s.workers,
    source: x.source,
    onProgress: o.onProgress,
    onFused: (r) => r.warnings.forEach((w) => o.onWarning?.(w)),
    verify: first && { inputs: first, tolerance: s.tolerance, latencyBatches: [], requireOk: true },
    losses: data && { data, batchSize: s.batchSize, preprocess: x.prep },
    files: {
      model: o.out!,
      denoisers: o.denoisersOut
        ? { path: o.denoisersOut, filter: s.layers, meta: { model: x.source, mode: s.mode } }
        : undefined,
      diagnostics: report
        ? {
            json: report,
            svg: `${reportStem(report)}.svg`,
            png: `${reportStem(report)}.png`,
            content: (r, c) => ({
              model: x.source,
              mode: s.mode,
              layers: c.layers,
              fit: r.fit,
              verification: c.verification && briefVerification(c.verification),
              skipped: x.skipped,
              ...sharing(x.plan, r.fuseReport),
            }),
          }
        : undefined,
    },
  });
}

/**
 * Label-free DenoiseRep on a model and unlabeled images, in one call: plan the layers,
 * compute statistics (or train), fit the denoisers, fuse them into the weights, verify the
 * fused model against the unfused one, diagnose each layer, and write the files. What
 * `denoiserep fit` does; the command is a thin wrapper over this function.
 *
 * Every option is checked, and every output path against every input path and against the
 * other outputs (symlinks and hard links included), before any work: a clash is a
 * UsageError naming both flags, and nothing is written.
 * @param model - an .onnx file (NCHW float input, opset 13–17) or a model preset name
 * @param options - images, output and fit settings ({@link FitOptions})
 * @returns the report: per-layer diagnostics, verification, fit details
 * @throws UsageError for a bad option or path; DataError or ModelError for bad data or a
 *   model the tool cannot handle, or a fused model that fails verification
 * @example
 * const report = await fit('model.onnx', {
 *   images: 'photos/', out: 'fused.onnx', size: 224, channels: 3,
 *   mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
 * });
 * console.log(report.verification?.ok, report.layers.length);
 */
export async function fit(model: string, options: FitShardOptions): Promise<StatisticsReport>;
export async function fit(model: string, options: FitOptions): Promise<FitReport>;
export async function fit(
  model: string,
  options: FitOptions,
): Promise<FitReport | StatisticsReport> {
  const o = options;
  const s = fitSettings(o);
  checkOutputPaths(...fitPaths(model, o, s));
  const x = await loadFitInputs(model, o, s);
  if (s.shard) return fitShard(o as FitShardOptions, s, x);
  const r = await fitPipeline(o, s, x);
  return {
    kind: 'fused',
    model: x.source,
    out: o.out!,
    mode: s.mode,
    layers: r.layers,
    images: s.fromStats ? undefined : x.data?.size,
    skipped: x.skipped,
    ...sharing(x.plan, r.fuseReport),
    verification: r.verification && briefVerification(r.verification),
    fit: r.fit,
    warnings: r.warnings,
    ...(o.denoisersOut ? { denoisersOut: o.denoisersOut } : {}),
    ...(o.report ? { report: o.report } : {}),
  };
}
