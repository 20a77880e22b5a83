import { layerContext, type LayerContext } from '../layers/context.js';
import { GraphBuilder, type Value } from '../onnx/builder.js';
import type { Model } from '../onnx/ir.js';
import { DataError, UsageError } from '../util/errors.js';
import { ParamStore } from './params.js';
import { INPUT_NAME } from './types.js';
import type { UNetDef } from './unet.js';

/** Timestep input of a U-Net graph: float [N], DDPM's step index t − 1 in 0..T−1. */
export const TIMESTEP_NAME = 'timestep';
/** Predicted-noise output of a U-Net graph. */
export const EPS_NAME = 'eps';

/** Output name of a tapped block's activation (`feature::mid`). */
export function tapName(block: string): string {
  return `feature::${block}`;
}

/** Output name of a block's activation averaged over its positions (`pooled::mid`, [N, C]). */
export function pooledName(block: string): string {
  return `pooled::${block}`;
}

/** A U-Net under construction (training or evaluation). */
export interface UNetGraph {
  b: GraphBuilder;
  ctx: LayerContext;
  /** x_t [N, C, H, W], in the diffusion space ([-1, 1] for images). */
  input: Value;
  timestep: Value;
  eps: Value;
  /** Block outputs by name ({@link UNetDef.blocks}). */
  taps: Map<string, Value>;
}

/**
 * Builds a U-Net's graph: inputs `input` (x_t) and `timestep`; no outputs yet (the
 * caller adds a loss, or chooses outputs with {@link unetModel}). Parameter values depend
 * only on `seed` and their names.
 * @example
 * const g = buildUNet(getDiffusionPreset('ddpm-unet-micro'), 'train');
 */
export function buildUNet(def: UNetDef, mode: 'train' | 'eval', seed = 0): UNetGraph {
  const b = new GraphBuilder({ name: def.name, seed });
  const ctx = layerContext(b, mode);
  const input = b.input(INPUT_NAME, 'float32', ['N', ...def.inputShape]);
  const timestep = b.input(TIMESTEP_NAME, 'float32', ['N']);
  const { eps, taps } = def.build(ctx, input, timestep);
  return { b, ctx, input, timestep, eps, taps };
}

/**
 * A U-Net's seeded initial parameters.
 * @example
 * const store = unetInitialWeights(def, 0);
 */
export function unetInitialWeights(def: UNetDef, seed = 0): ParamStore {
  const { b } = buildUNet(def, 'eval', seed);
  const built = b.build();
  return ParamStore.fromInitializers(built.model.graph.initializers, [
    ...built.params,
    ...built.buffers,
  ]);
}

/**
 * The evaluation graph of a U-Net with `values` as its weights and the chosen outputs:
 * `eps` (default), the activations of blocks (`feature::<block>`, [N, C, h, w]) and/or
 * their global averages over positions (`pooled::<block>`, [N, C]).
 * @param def - the architecture
 * @param values - every parameter, by name (checked: name and shape)
 * @param opts.eps - output the predicted noise (default true)
 * @param opts.taps - blocks whose activations to output
 * @param opts.pooled - blocks whose position-averaged activations to output
 * @example
 * const model = unetModel(def, store, { eps: false, taps: ['mid'] });
 */
export function unetModel(
  def: UNetDef,
  values: ParamStore,
  opts: { eps?: boolean; taps?: readonly string[]; pooled?: readonly string[] } = {},
): Model {
  const g = buildUNet(def, 'eval');
  const tap = (t: string) => {
    const v = g.taps.get(t);
    if (!v) {
      throw new UsageError(`${def.name} has no block '${t}' (blocks: ${def.blocks.join(', ')})`);
    }
    return v;
  };
  for (const t of opts.taps ?? []) g.b.output(tap(t), tapName(t));
  for (const t of opts.pooled ?? [])
    g.b.output(g.b.reduceMean(tap(t), [2, 3], false), pooledName(t));
  if (opts.eps ?? true) g.b.output(g.eps, EPS_NAME);
  if (g.b.graph.outputs.length === 0) throw new UsageError('unetModel: no output chosen');
  const built = g.b.build();
  const inits = built.model.graph.initializers;
  for (const n of [...built.params, ...built.buffers]) {
    const p = values.get(n);
    const want = inits.get(n)!.dims;
    if (p.shape.join(',') !== want.join(',')) {
      throw new DataError(
        `weight '${n}' has shape [${p.shape.join(', ')}], ${def.name} expects [${want.join(', ')}]`,
      );
    }
    inits.set(n, { dtype: 'float32', dims: [...p.shape], data: Float32Array.from(p.data) });
  }
  return { ...built.model, metadata: { ...built.model.metadata, preset: def.name } };
}
