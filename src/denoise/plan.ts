import type { Graph } from '../onnx/ir.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { Rng } from '../util/rng.js';
import {
  assignTimesteps,
  coefficients,
  makeSchedule,
  type Schedule,
  type ScheduleOptions,
  type StepCoefficients,
  type TimestepMode,
} from './schedule.js';
import { type LayerFilter, type SelectedLayer, type SkippedLayer, surveyOrFail } from './select.js';

/** One selected layer with its denoiser's placement, timestep and parameter names. */
export interface DenoiserPlan {
  layer: SelectedLayer;
  t: number;
  coeffs: StepCoefficients;
  /** 'input': x' = c3 x − c1 ε̂(x) before a Linear; 'output': the same on a Conv's output channels. */
  side: 'input' | 'output';
  /** Size of the denoised feature (in-features, or output channels). */
  dim: number;
  /**
   * Whether the denoiser has its affine terms (time embedding e and bias). A layer without
   * a bias has nowhere to hold the fused bias term, so its denoiser is linear (ε̂ = Wd x)
   * and the fused graph stays identical in topology.
   */
  affine: boolean;
  /** Parameter names: `<layer>.denoise.weight`, `.bias`, `.embed` (input side only). */
  names: { weight: string; bias?: string; embed?: string };
}

export interface ConversionPlan {
  layers: DenoiserPlan[];
  schedule: Schedule;
  timestepMode: TimestepMode;
  /**
   * Candidate layers (MatMul, Gemm, Conv passing the filter) that are not converted, each
   * with its reason: tied or dynamic weights, grouped or depthwise convs, ...
   */
  skipped: SkippedLayer[];
  /**
   * Whether layers with tied weights were selected, to be fused each into its own copy of
   * the weight (fuseModel refuses to write a tied weight otherwise).
   */
  untie: boolean;
}

export interface PlanOptions {
  filter?: LayerFilter;
  timesteps?: TimestepMode;
  schedule?: ScheduleOptions;
  /** Model name or file, for messages. */
  source?: string;
  /**
   * Also convert layers whose weight another layer reads (tied weights): each gets its own
   * copy of the weight at fusion, which adds parameters. Default: skip them, with a reason.
   */
  untie?: boolean;
}

/** The suffix every denoiser parameter name carries. */
export const DENOISE_SUFFIX = '.denoise';

/**
 * Selects layers and assigns each a timestep and a denoiser.
 * @param graph - the backbone graph
 * @param opts - layer filter, timestep mode, schedule
 * @example
 * const plan = planConversion(model.graph, { filter: 'mlp' });
 */
export function planConversion(graph: Graph, opts: PlanOptions = {}): ConversionPlan {
  const schedule = makeSchedule(opts.schedule);
  const timestepMode = opts.timesteps ?? 'paper';
  const untie = opts.untie ?? false;
  const { layers: selected, skipped } = surveyOrFail(
    graph,
    opts.filter ?? 'all',
    opts.source ?? graph.name,
    { untie },
  );
  const ts = assignTimesteps(
    selected.map((l) => l.name),
    timestepMode,
    schedule.timesteps,
  );
  const layers = selected.map((layer): DenoiserPlan => {
    const t = ts.get(layer.name)!;
    const side = layer.kind === 'conv' ? 'output' : 'input';
    const affine = layer.bias !== undefined;
    const base = `${layer.name}${DENOISE_SUFFIX}`;
    return {
      layer,
      t,
      coeffs: coefficients(schedule, t),
      side,
      dim: side === 'input' ? layer.inFeatures : layer.outFeatures,
      affine,
      names: {
        weight: `${base}.weight`,
        ...(affine ? { bias: `${base}.bias` } : {}),
        // The output-side (conv) denoiser's bias already absorbs a time embedding.
        ...(affine && side === 'input' ? { embed: `${base}.embed` } : {}),
      },
    };
  });
  return { layers, schedule, timestepMode, skipped, untie };
}

/** Every denoiser parameter name of a plan, in layer order. */
export function denoiserParamNames(plan: ConversionPlan): string[] {
  return plan.layers.flatMap((p) => [
    p.names.weight,
    ...(p.names.bias ? [p.names.bias] : []),
    ...(p.names.embed ? [p.names.embed] : []),
  ]);
}

/**
 * Initial denoiser parameters: the weight and bias as a PyTorch nn.Linear(dim, dim)
 * (U(±1/√dim)), the time embedding at zero. Each tensor draws from a stream forked by its
 * name, so selecting other layers does not change a layer's initial values.
 */
export function initDenoisers(plan: ConversionPlan, seed: number): Map<string, Tensor> {
  const rng = new Rng(seed);
  const out = new Map<string, Tensor>();
  for (const p of plan.layers) {
    const bound = 1 / Math.sqrt(p.dim);
    out.set(
      p.names.weight,
      float32(
        [p.dim, p.dim],
        rng.fork(p.names.weight).fillUniform(new Float32Array(p.dim * p.dim), -bound, bound),
      ),
    );
    if (p.names.bias)
      out.set(
        p.names.bias,
        float32(
          [p.dim],
          rng.fork(p.names.bias).fillUniform(new Float32Array(p.dim), -bound, bound),
        ),
      );
    if (p.names.embed) out.set(p.names.embed, float32([p.dim], new Float32Array(p.dim)));
  }
  return out;
}

/**
 * Denoisers of the same names and shapes as `values`, all zero: ε̂ = 0, so the fused map
 * is c3·I (the starting point the closed-form fit is measured against).
 */
export function zeroDenoisers(values: Map<string, Tensor>): Map<string, Tensor> {
  return new Map([...values].map(([k, t]) => [k, { ...t, data: new Float32Array(t.data.length) }]));
}
