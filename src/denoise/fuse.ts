import { ModelError } from '../util/errors.js';
import { cloneGraph, type Model } from '../onnx/ir.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import type { Rng } from '../util/rng.js';
import { fuseConvOutput, fuseLinearInput } from './fuse-math.js';
import type { ConversionPlan, DenoiserPlan } from './plan.js';
import type { WeightPath } from './select.js';

export interface FuseOptions {
  /**
   * Stochastic DDPM step (adds c2·W z to each bias, z drawn from this seeded generator).
   * Off by default: the fused model is then a pure function of the trained weights.
   */
  stochastic?: Rng;
}

/** Whether a weight path transposes a 2-D weight (an odd number of swaps). */
function pathTransposes(path: WeightPath[], layer: string): boolean {
  let swapped = false;
  for (const s of path) {
    if (s.op === 'Identity') continue;
    const perm = s.perm.length ? s.perm : [1, 0];
    if (perm.length !== 2)
      throw new ModelError(`layer '${layer}': weight reached through a ${perm.length}-D Transpose`);
    if (perm[0] === 1) swapped = !swapped;
  }
  return swapped;
}

function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j]!;
  return out;
}

function tensorOf(
  values: Map<string, Tensor>,
  name: string | undefined,
  p: DenoiserPlan,
): Float32Array | null {
  if (!name) return null;
  const t = values.get(name);
  if (!t)
    throw new ModelError(`layer '${p.layer.name}': no value for denoiser parameter '${name}'`);
  return t.data as Float32Array;
}

/**
 * Fuses trained denoisers into their layers' weights. The result has exactly the original
 * graph — same nodes in the same order, same initializer names and shapes — with only the
 * values of the selected layers' weights and biases changed (computed in float64, stored
 * as float32). The input model is not modified.
 * @param model - the original (unconverted) model
 * @param plan - the conversion plan the denoisers were trained with
 * @param values - denoiser parameters by name
 */
export function fuseModel(
  model: Model,
  plan: ConversionPlan,
  values: Map<string, Tensor>,
  opts: FuseOptions = {},
): Model {
  const graph = cloneGraph(model.graph);
  for (const p of plan.layers) {
    const L = p.layer;
    const stored = graph.initializers.get(L.weight);
    if (!stored)
      throw new ModelError(`layer '${L.name}': weight initializer '${L.weight}' is missing`);
    const wd = tensorOf(values, p.names.weight, p)!;
    const bias = L.bias ? (graph.initializers.get(L.bias)!.data as Float32Array) : null;
    let newWeight: Float32Array;
    let newBias: Float32Array;
    let biasIsZero: boolean;
    if (p.side === 'input') {
      const swapped = pathTransposes(L.weightPath, L.name);
      // The weight as the layer sees it, in the layer's layout.
      const rows = L.layout === 'out-in' ? L.outFeatures : L.inFeatures;
      const cols = L.layout === 'out-in' ? L.inFeatures : L.outFeatures;
      const seen = swapped
        ? transpose2d(stored.data as Float32Array, cols, rows)
        : (stored.data as Float32Array);
      const fused = fuseLinearInput({
        weight: seen,
        bias,
        inFeatures: L.inFeatures,
        outFeatures: L.outFeatures,
        layout: L.layout === 'out-in' ? 'out-in' : 'in-out',
        denoiser: {
          wd,
          bd: tensorOf(values, p.names.bias, p) ?? new Float32Array(p.dim),
          e: tensorOf(values, p.names.embed, p) ?? new Float32Array(p.dim),
        },
        coeffs: p.coeffs,
        stochastic: opts.stochastic ? { rng: opts.stochastic.fork(L.name) } : undefined,
        name: L.name,
      });
      newWeight = swapped ? transpose2d(fused.weight, rows, cols) : fused.weight;
      newBias = fused.bias;
      biasIsZero = fused.biasIsZero;
    } else {
      if (L.weightPath.some((s) => s.op === 'Transpose')) {
        throw new ModelError(
          `layer '${L.name}': conv weight reached through a Transpose cannot be fused`,
        );
      }
      const [co, ipg, kh, kw] = stored.dims as [number, number, number, number];
      const fused = fuseConvOutput({
        weight: stored.data as Float32Array,
        bias,
        outChannels: co,
        inChannelsPerGroup: ipg,
        kernelH: kh,
        kernelW: kw,
        groups: L.groups ?? 1,
        denoiser: { wd, c: tensorOf(values, p.names.bias, p) ?? new Float32Array(p.dim) },
        coeffs: p.coeffs,
        name: L.name,
      });
      newWeight = fused.weight;
      newBias = fused.bias;
      biasIsZero = fused.biasIsZero;
    }
    graph.initializers.set(L.weight, float32([...stored.dims], newWeight));
    if (L.bias)
      graph.initializers.set(L.bias, float32([...graph.initializers.get(L.bias)!.dims], newBias));
    else if (!biasIsZero) {
      // Cannot happen for plans from planConversion (bias-less layers get linear denoisers).
      throw new ModelError(`layer '${L.name}' has no bias to hold the fused bias term`);
    }
  }
  return { ...model, graph };
}
