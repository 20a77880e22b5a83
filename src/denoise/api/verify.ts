// `verify` and `inspect` in one call each: what `denoiserep verify` and `denoiserep inspect`
// do, returning their typed reports.
import { feedBatches } from '../../data/dataset.js';
import { loadInputImages } from '../../data/model-inputs.js';
import { countFlops } from '../../eval/flops.js';
import { loadModelArg } from '../../models/load.js';
import { readModel } from '../../onnx/serialize.js';
import { float32 } from '../../onnx/tensor.js';
import { UsageError } from '../../util/errors.js';
import { Rng } from '../../util/rng.js';
import { readDenoisers } from '../denoiser-file.js';
import { describePlan, type PlannedLayerInfo } from '../fit.js';
import { planConversion } from '../plan.js';
import { parseTimestepMode, type TimestepFlag } from '../schedule.js';
import type { SkippedLayer } from '../select.js';
import { type VerifyReport, verifyFusion } from '../verify.js';
import {
  checkRanged,
  checkString,
  type CommonOptions,
  commonSettings,
  type ImageOptions,
  imageSettings,
} from './options.js';

/** Options of {@link verify}: the flags of `denoiserep verify`. */
export interface VerifyModelOptions extends CommonOptions, ImageOptions {
  /** The fused model (required). */
  fused: string;
  /** The denoisers it was fused from (required): their metadata rebuilds the plan. */
  denoisers: string;
  /** Images compared (default 64; the first batch of the images). */
  batch?: number;
  /** Largest accepted relative error (default 1e-4). */
  tolerance?: number;
  /** Timed runs per model at batch 64; batch 1 gets 10x as many (default 100). */
  runs?: number;
  /**
   * Seconds the latency measurement may take in all (default 30): fewer runs are timed
   * when a probe run shows the requested ones would not fit, whatever the model's size.
   */
  latencyBudget?: number;
}

/**
 * Checks a fused model against the unfused model run with explicit denoising steps, on
 * real images: output and per-layer errors, topology, FLOPs, and latency at batch 1 and 64
 * (interleaved). What `denoiserep verify` does; a failed check is `ok: false` in the
 * report (the command turns it into exit code 2).
 * @param model - the original .onnx file (or a preset name)
 * @param options - the fused model, its denoisers, the images ({@link VerifyModelOptions})
 * @throws UsageError for a bad option; DataError or ModelError for unreadable files
 * @example
 * const r = await verify('model.onnx', { fused: 'fused.onnx', denoisers: 'd.safetensors', images: 'photos/', size: 224 });
 * if (!r.ok) console.error(r.failures);
 */
export async function verify(model: string, options: VerifyModelOptions): Promise<VerifyReport> {
  const o = options;
  const { seed, threads } = commonSettings(o);
  for (const k of ['fused', 'denoisers'] as const) {
    checkString(k, o[k]);
    if (!o[k]) throw new UsageError(`--${k} <file> is required`);
  }
  for (const k of ['batch', 'runs', 'tolerance', 'latencyBudget'] as const) checkRanged(k, o[k]);
  const images = imageSettings(o);
  const { model: original, source } = await loadModelArg(model, seed);
  const fused = await readModel(o.fused);
  const { plan, values } = readDenoisers(o.denoisers, original.graph, source);
  const { data: ds, prep, inputName } = await loadInputImages(original, source, images);
  const batch = Math.min(o.batch ?? 64, ds.size);
  const feeds = feedBatches(ds, inputName, batch, prep).next().value!;
  const rng = new Rng(seed);
  const [c, h, w] = [ds.channels, ds.height, ds.width];
  o.onProgress?.({ stage: 'verify', done: 0, total: 1 });
  const report = await verifyFusion({
    original,
    fused,
    plan,
    denoisers: values,
    inputs: feeds,
    tolerance: o.tolerance ?? 1e-4,
    threads,
    latencyRuns: o.runs ?? 100,
    latencyBudgetMs: 1000 * (o.latencyBudget ?? 30),
    makeInputs: (n) => ({
      [inputName]: float32([n, c, h, w], rng.fillUniform(new Float32Array(n * c * h * w), 0, 1)),
    }),
  });
  o.onProgress?.({ stage: 'verify', done: 1, total: 1 });
  return report;
}

/** Options of {@link inspect}: the flags of `denoiserep inspect`. */
export interface InspectOptions extends Pick<CommonOptions, 'seed'> {
  /** Layers: `'all'` (default), `'mlp'`, `'linear'`, `'conv'`, or globs like `'blocks.*.mlp.*'`. */
  layers?: string;
  /** Timestep assignment: `'paper'` (N..1, default), `'public-code'` or `'linear:<first>:<last>'`. */
  timesteps?: TimestepFlag;
  /** Multiple of the paper's betas (default 1): shown in each layer's c1 and c3. */
  noiseScale?: number;
  /** Also select layers with tied weights (fusion gives each its own copy). */
  untie?: boolean;
}

/** What {@link inspect} found. */
export interface InspectReport {
  /** The model, as messages name it. */
  model: string;
  nodes: number;
  flopsPerImage: number;
  selected: number;
  /** The selected layers: shapes, denoiser, timestep, coefficients and FLOPs of each. */
  layers: (PlannedLayerInfo & { flops: number })[];
  /** MatMul, Gemm and Conv layers (passing the filter) not selected, each with its reason. */
  skipped: SkippedLayer[];
}

/**
 * The layers DenoiseRep selects in a model, with their shapes, timesteps and FLOPs; what
 * `denoiserep inspect` prints.
 * @param model - an .onnx file or a model preset name
 * @param options - layer filter and timestep assignment ({@link InspectOptions})
 * @throws UsageError for a bad option or a filter that selects nothing; ModelError for a
 *   model with no selectable layer
 * @example
 * const { layers } = await inspect('model.onnx', { layers: 'blocks.*.mlp.*' });
 */
export async function inspect(model: string, options: InspectOptions = {}): Promise<InspectReport> {
  const { seed } = commonSettings(options);
  checkString('layers', options.layers);
  checkString('timesteps', options.timesteps);
  checkRanged('noiseScale', options.noiseScale);
  const timesteps = parseTimestepMode(options.timesteps ?? 'paper');
  const { model: m, source } = await loadModelArg(model, seed);
  const plan = planConversion(m.graph, {
    filter: options.layers ?? 'all',
    timesteps,
    schedule: { noiseScale: options.noiseScale ?? 1 },
    untie: options.untie ?? false,
    source,
  });
  const flops = countFlops(m);
  const byNode = new Map(flops.byNode.map((f) => [f.name, f.flops]));
  const layers = describePlan(plan).map((l, i) => ({
    ...l,
    flops: byNode.get(plan.layers[i]!.layer.node.name) ?? 0,
  }));
  return {
    model: source,
    nodes: m.graph.nodes.length,
    flopsPerImage: flops.total,
    selected: layers.length,
    layers,
    skipped: plan.skipped,
  };
}
