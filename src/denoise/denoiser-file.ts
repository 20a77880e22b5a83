import { DataError } from '../util/errors.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { Graph } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import { type ConversionPlan, denoiserParamNames, planConversion } from './plan.js';
import type { ScheduleOptions, TimestepMode } from './schedule.js';

const FORMAT = 'denoiserep-denoisers/1';

/**
 * Writes trained denoisers as safetensors with the plan's settings in the metadata
 * (layer filter, timestep mode, schedule, untie), so that `fuse` and `verify` rebuild the same
 * plan from the original model.
 */
export function writeDenoisers(
  path: string,
  plan: ConversionPlan,
  filter: string,
  values: Map<string, Tensor>,
  extra: Record<string, string> = {},
): void {
  const names = denoiserParamNames(plan);
  const tensors = new Map(names.map((n) => [n, values.get(n)!]));
  writeSafetensors(path, tensors, {
    format: FORMAT,
    layers: filter,
    timesteps: JSON.stringify(plan.timestepMode),
    untie: String(plan.untie),
    schedule: JSON.stringify({
      timesteps: plan.schedule.timesteps,
      betaStart: plan.schedule.betaStart,
      betaEnd: plan.schedule.betaEnd,
    }),
    ...extra,
  });
}

/**
 * Reads a denoiser file and rebuilds its plan on `graph`; every denoiser of the plan
 * must be in the file with the right shape.
 */
export function readDenoisers(
  path: string,
  graph: Graph,
  source: string,
): { plan: ConversionPlan; values: Map<string, Tensor>; filter: string } {
  const { tensors, metadata } = readSafetensors(path);
  if (metadata.format !== FORMAT)
    throw new DataError(
      `${path}: not a denoiserep denoiser file (metadata format '${metadata.format ?? ''}')`,
    );
  const filter = metadata.layers ?? 'all';
  const plan = planConversion(graph, {
    filter,
    timesteps: JSON.parse(metadata.timesteps ?? '"paper"') as TimestepMode,
    schedule: JSON.parse(metadata.schedule ?? '{}') as ScheduleOptions,
    untie: metadata.untie === 'true',
    source,
  });
  const missing = denoiserParamNames(plan).filter((n) => !tensors.has(n));
  if (missing.length)
    throw new DataError(
      `${path} lacks ${missing.length} denoiser tensors for ${source}: ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''}`,
    );
  for (const p of plan.layers) {
    const t = tensors.get(p.names.weight)!;
    if (t.dims.join() !== `${p.dim},${p.dim}`)
      throw new DataError(
        `${path}: '${p.names.weight}' is [${t.dims}], layer '${p.layer.name}' needs [${p.dim}, ${p.dim}]`,
      );
  }
  return { plan, values: tensors, filter };
}
