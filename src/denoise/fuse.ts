import { ModelError } from '../util/errors.js';
import { cloneGraph, type Model } from '../onnx/ir.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import type { Rng } from '../util/rng.js';
import { fuseConvOutput, fuseLinearInput } from './fuse-math.js';
import { type DenseKernels, matmulCompiled } from './linalg-compiled.js';
import type { ConversionPlan, DenoiserPlan } from './plan.js';
import type { WeightPath } from './select.js';

export interface FuseOptions {
  /**
   * Stochastic DDPM step (adds c2·W z to each bias, z drawn from this seeded generator).
   * Off by default: the fused model is then a pure function of the trained weights.
   */
  stochastic?: Rng;
  /**
   * W·Wd (out x in, float64) per input-side layer name, computed beforehand by a compiled
   * product ({@link fuseModelCompiled}); layers without one are multiplied here.
   */
  products?: Map<string, Float64Array>;
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

/** An input-side layer's weight as the layer sees it, in its layout (`rows` x `cols`). */
function seenWeight(
  p: DenoiserPlan,
  stored: Float32Array,
): { seen: Float32Array; swapped: boolean; rows: number; cols: number } {
  const L = p.layer;
  const swapped = pathTransposes(L.weightPath, L.name);
  const rows = L.layout === 'out-in' ? L.outFeatures : L.inFeatures;
  const cols = L.layout === 'out-in' ? L.inFeatures : L.outFeatures;
  const seen = swapped ? transpose2d(stored, cols, rows) : stored;
  return { seen, swapped, rows, cols };
}

/**
 * {@link fuseModel} with the O(n³) products W·Wd of the input-side layers run by the
 * compiled float64 kernels (multi-threaded); the same model up to float64 rounding.
 * @param model - the original model
 * @param plan - the plan the denoisers belong to
 * @param values - denoiser parameters by name
 * @param kernels - the compiled kernels
 * @example const fused = await fuseModelCompiled(model, plan, values, kernels);
 */
export async function fuseModelCompiled(
  model: Model,
  plan: ConversionPlan,
  values: Map<string, Tensor>,
  kernels: DenseKernels,
  opts: Omit<FuseOptions, 'products'> = {},
): Promise<Model> {
  const products = new Map<string, Float64Array>();
  for (const p of plan.layers) {
    if (p.side !== 'input') continue;
    const L = p.layer;
    const stored = model.graph.initializers.get(L.weight);
    if (!stored) continue; // fuseModel names the missing weight
    const { seen } = seenWeight(p, stored.data as Float32Array);
    const nIn = L.inFeatures;
    const nOut = L.outFeatures;
    const wOI = new Float64Array(nOut * nIn);
    if (L.layout === 'out-in') wOI.set(seen);
    else
      for (let i = 0; i < nIn; i++)
        for (let o = 0; o < nOut; o++) wOI[o * nIn + i] = seen[i * nOut + o]!;
    const wd = tensorOf(values, p.names.weight, p)!;
    products.set(L.name, await matmulCompiled(wOI, wd, nOut, nIn, nIn, kernels));
  }
  return fuseModel(model, plan, values, { ...opts, products });
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
      const { seen, swapped, rows, cols } = seenWeight(p, stored.data as Float32Array);
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
        product: opts.products?.get(L.name),
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
