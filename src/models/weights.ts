import { DataError } from '../util/errors.js';
import { globMatcher } from '../util/glob.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { BuiltModel } from '../onnx/builder.js';
import type { Model } from '../onnx/ir.js';
import { writeModel } from '../onnx/serialize.js';
import type { Tensor } from '../onnx/tensor.js';
import { ParamStore } from './params.js';
import { buildBackbone } from './registry.js';
import type { ModelDef } from './types.js';

/**
 * Keys that checkpoints from other frameworks carry but that have no counterpart here and
 * no effect on inference (torchvision's batch-norm step counter).
 */
export const HARMLESS_KEYS: readonly string[] = ['*.num_batches_tracked', 'num_batches_tracked'];

export interface LoadWeightsOptions {
  /** Unexpected keys in the file are an error (default true), except {@link HARMLESS_KEYS}. */
  strict?: boolean;
  /**
   * Globs over names (`*` matches any run of characters, dots included) neither loaded
   * nor required: those parameters keep their seeded initial values. `head.*` loads a
   * backbone whose classifier has another number of classes.
   */
  ignore?: string[];
  /** Seed of the initial values kept for ignored names (default 0). */
  seed?: number;
}

export interface LoadWeightsReport {
  /** Names whose values came from the file. */
  loaded: string[];
  /** Expected names left at their initial values because `ignore` matched them. */
  kept: string[];
  /** File keys not used: ignored, harmless, or (non-strict) unexpected. */
  skipped: string[];
}

/** Names and shapes of every parameter and buffer of a model, in graph order. */
export function expectedWeights(def: ModelDef): Map<string, number[]> {
  return weightsOf(def, 0).shapes;
}

/**
 * A model's seeded initial parameters and buffers.
 * @example
 * const store = initialWeights(getPreset('resnet-micro'), 0);
 */
export function initialWeights(def: ModelDef, seed = 0): ParamStore {
  return weightsOf(def, seed).store;
}

/**
 * Built evaluation graphs by definition and seed: building initialises every parameter,
 * which takes seconds for the ImageNet presets, and loading then exporting needs the
 * graph twice. Cached graphs are never mutated (values are copied in and out).
 */
const builtCache = new WeakMap<ModelDef, Map<number, BuiltModel>>();

function builtEval(def: ModelDef, seed: number): BuiltModel {
  let bySeed = builtCache.get(def);
  if (!bySeed) builtCache.set(def, (bySeed = new Map<number, BuiltModel>()));
  let built = bySeed.get(seed);
  if (!built) bySeed.set(seed, (built = buildBackbone(def, 'eval', seed).b.build()));
  return built;
}

function weightsOf(
  def: ModelDef,
  seed: number,
): { shapes: Map<string, number[]>; store: ParamStore } {
  const built = builtEval(def, seed);
  const names = [...built.params, ...built.buffers];
  const store = ParamStore.fromInitializers(built.model.graph.initializers, names);
  return { shapes: new Map(names.map((n) => [n, store.get(n).shape])), store };
}

/** Decodes IEEE half-precision bits. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function toFloat32(t: Tensor, name: string, source: string): Float32Array {
  switch (t.dtype) {
    case 'float32':
      return Float32Array.from(t.data as Float32Array);
    case 'float64':
      return Float32Array.from(t.data as Float64Array);
    case 'float16':
      return Float32Array.from(t.data as Uint16Array, halfToFloat);
    default:
      throw new DataError(`${source}: tensor '${name}' is ${t.dtype}, expected a float tensor`);
  }
}

/**
 * Matches tensors to a model's expected parameters by name and shape, in place into
 * `store` (which holds every expected name). All problems are collected before failing:
 * the DataError lists every missing name, every shape mismatch (expected vs got) and, in
 * strict mode, every unexpected key.
 * @param store - the model's parameters and buffers (initial values; overwritten)
 * @param tensors - values by name (a safetensors file's contents)
 * @param source - file name for messages
 * @example
 * const report = assignWeights(store, readSafetensors(path).tensors, path, { ignore: ['head.*'] });
 */
export function assignWeights(
  store: ParamStore,
  tensors: Map<string, Tensor>,
  source: string,
  opts: LoadWeightsOptions = {},
): LoadWeightsReport {
  const ignored = globMatcher(opts.ignore ?? []);
  const harmless = globMatcher(HARMLESS_KEYS);
  const missing: string[] = [];
  const mismatched: string[] = [];
  const unexpected: string[] = [];
  const report: LoadWeightsReport = { loaded: [], kept: [], skipped: [] };
  for (const name of store.names()) {
    if (ignored(name)) {
      report.kept.push(name);
      continue;
    }
    const t = tensors.get(name);
    const want = store.get(name).shape;
    if (!t) missing.push(name);
    else if (t.dims.length !== want.length || t.dims.some((d, i) => d !== want[i])) {
      mismatched.push(`${name} (expected [${want.join(', ')}], got [${t.dims.join(', ')}])`);
    }
  }
  for (const name of tensors.keys()) {
    if (store.has(name) && !ignored(name)) continue;
    if (ignored(name) || harmless(name) || opts.strict === false) report.skipped.push(name);
    else unexpected.push(name);
  }
  if (missing.length || mismatched.length || unexpected.length) {
    const parts = [
      missing.length ? `missing ${missing.length}: ${missing.join(', ')}` : '',
      mismatched.length ? `wrong shape ${mismatched.length}: ${mismatched.join('; ')}` : '',
      unexpected.length
        ? `unexpected ${unexpected.length}: ${unexpected.join(', ')} (use ignore globs or non-strict loading)`
        : '',
    ].filter(Boolean);
    throw new DataError(`${source}: weights do not fit the model — ${parts.join('; ')}`);
  }
  for (const name of store.names()) {
    if (ignored(name)) continue;
    store.get(name).data.set(toFloat32(tensors.get(name)!, name, source));
    report.loaded.push(name);
  }
  return report;
}

/**
 * Loads a safetensors file into a model's parameters and buffers by name (timm /
 * torchvision names), checking every name and shape.
 * @param def - the model the weights are for
 * @param path - `.safetensors` file
 * @param opts - strictness, ignore globs, seed of kept values
 * @example
 * const { store } = loadWeights(getPreset('vit-s16'), 'vit_small.safetensors');
 * exportOnnx(getPreset('vit-s16'), store, 'vit-s16.onnx');
 */
export function loadWeights(
  def: ModelDef,
  path: string,
  opts: LoadWeightsOptions = {},
): { store: ParamStore; report: LoadWeightsReport } {
  const { store } = weightsOf(def, opts.seed ?? 0);
  const { tensors } = readSafetensors(path);
  const report = assignWeights(store, tensors, path, opts);
  return { store, report };
}

/**
 * Writes a model's parameters and buffers to a safetensors file (atomically).
 * @param path - output `.safetensors`
 * @param values - parameters and buffers by name
 * @param metadata - string metadata stored in the header (preset name, epoch, ...)
 */
export function saveWeights(
  path: string,
  values: ParamStore,
  metadata: Record<string, string> = {},
): void {
  writeSafetensors(path, values.toTensors(), metadata);
}

/**
 * The evaluation graph of `def` (outputs `logits` and `feature`) with `values` as its
 * initializers. Every parameter and buffer of the graph must be in `values`.
 * @example
 * const model = modelWithWeights(getPreset('resnet-tiny-fmnist'), store);
 */
export function modelWithWeights(def: ModelDef, values: ParamStore, seed = 0): Model {
  const built = builtEval(def, seed);
  const g = built.model.graph;
  const inits = new Map(g.initializers);
  for (const n of [...built.params, ...built.buffers]) {
    const p = values.get(n);
    const want = g.initializers.get(n)!.dims;
    if (p.shape.length !== want.length || p.shape.some((d, i) => d !== want[i])) {
      throw new DataError(
        `weight '${n}' has shape [${p.shape.join(', ')}], ${def.name} expects [${want.join(', ')}]`,
      );
    }
    inits.set(n, { dtype: 'float32', dims: [...p.shape], data: Float32Array.from(p.data) });
  }
  return {
    ...built.model,
    graph: { ...g, initializers: inits },
    metadata: { ...built.model.metadata, preset: def.name },
  };
}

/**
 * Writes the evaluation graph with trained values as initializers to an `.onnx` file,
 * atomically (temp file + rename).
 * @param def - the architecture
 * @param values - its parameters and buffers
 * @param path - output `.onnx`
 * @example
 * exportOnnx(def, result.store, 'runs/vit/model.onnx');
 */
export function exportOnnx(def: ModelDef, values: ParamStore, path: string): Model {
  const model = modelWithWeights(def, values);
  writeModel(path, model);
  return model;
}
