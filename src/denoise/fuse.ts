import { ModelError, NonFiniteError, SharedTensorError } from '../util/errors.js';
import { cloneGraph, type Graph, type Model, type Node, producers } from '../onnx/ir.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import type { Rng } from '../util/rng.js';
import { fuseConvOutput, fuseLinearInput } from './fuse-math.js';
import { transpose } from './linalg.js';
import { type DenseKernels, matmulCompiled } from './linalg-compiled.js';
import type { ConversionPlan, DenoiserPlan } from './plan.js';
import {
  isParamName,
  lastSharedIndex,
  readCounts,
  traceRoute,
  type TensorRoute,
  valueAlong,
  type WeightPath,
} from './routes.js';
import { isTied, type SelectedLayer, weightReaders } from './select.js';

export interface FuseOptions {
  /**
   * Stochastic DDPM step (adds c2·W z to each bias, z drawn from this seeded generator).
   * Off by default: the fused model is then a pure function of the trained weights.
   */
  stochastic?: Rng;
  /**
   * Give each layer of a tied weight its own copy (more parameters). Default: the plan's
   * `untie`; without it, fusing a tied layer throws a SharedTensorError.
   */
  untie?: boolean;
  /**
   * Fusion products per layer name, float64, computed beforehand by a compiled product
   * ({@link fusionProducts}): W·Wd (out x in) of an input-side layer, Wd·W of an
   * output-side conv; layers without one are multiplied here.
   */
  products?: Map<string, Float64Array>;
}

/** A copy of a shared tensor that fusion added so that one layer could own its tensor. */
export interface TensorCopy {
  /** The layer that reads the copy. */
  layer: string;
  role: 'weight' | 'bias';
  /** The value the copy replaces for that layer (the copy started equal to it). */
  of: string;
  /** The new initializer (`<of>::copy`, numbered `::copy2`, ... if taken). */
  copy: string;
  elements: number;
  /**
   * 'tied': the weight of other layers too, untied on request (a parameter increase of
   * the PyTorch model as well); 'shared': read by other ops, or by layers that name it as
   * a separate parameter the exporter merged because the values were equal.
   */
  reason: 'tied' | 'shared';
  /**
   * Who reads the copy: 'layer' (it holds the layer's fused tensor) or 'others' (it holds
   * the original values for the other readers, and `of` the layer's fused tensor).
   */
  reader: 'layer' | 'others';
  /** The other readers of the shared value: node names, or `graph output <name>`. */
  readers: string[];
}

/** What fusion changed besides the fused values. */
export interface FuseReport {
  /** Initializers added, one per shared tensor a fused layer had to stop sharing. */
  copies: TensorCopy[];
  /** Elements in all copies. */
  addedParameters: number;
  /** Elements in the copies of tied weights (`untie`). */
  untiedParameters: number;
}

/** The suffix of the initializers fusion adds for layers whose tensors were shared. */
export const COPY_SUFFIX = '::copy';

/** Whether a 2-D weight path transposes the weight (an odd number of swaps). */
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

/** Where a layer's fused tensor goes: an initializer it owns and the steps after it. */
interface WriteTarget {
  init: string;
  /** The tensor currently there (the one the fusion transforms). */
  tensor: Tensor;
  /** The steps from that initializer to the layer. */
  path: WeightPath[];
}

/**
 * Makes the tensor a layer reads at `slot` its own. When a value on its route has other
 * readers, the last such value gets a copy (a new initializer) and one side of the sharing
 * reads the copy: the layer (its route's edge after that value now reads the copy), or,
 * when the layer reads a parameter-named initializer directly, the other readers, so that
 * the initializer keeps holding what its name says (this layer's parameter, now fused)
 * and the others keep the original values. Nodes are neither added nor reordered.
 */
function ownTensor(
  graph: Graph,
  L: SelectedLayer,
  role: 'weight' | 'bias',
  slot: { node: Node; index: number },
  expected: string,
  untie: boolean,
  copies: TensorCopy[],
): WriteTarget {
  const prod = producers(graph);
  const traced = traceRoute(graph, slot.node.inputs[slot.index] ?? '', prod, role === 'weight');
  // Earlier layers may have moved the other readers of `expected` to a copy of it.
  const route: TensorRoute | undefined = 'route' in traced ? traced.route : undefined;
  if (
    !route ||
    (route.init !== expected && !copies.some((c) => c.copy === route.init && c.of === expected))
  ) {
    throw new ModelError(
      `layer '${L.name}': its ${role} does not come from '${expected}' in this model (was the plan made for another model?)`,
    );
  }
  const counts = readCounts(graph);
  const s = lastSharedIndex(route, counts);
  if (s < 0)
    return { init: route.init, tensor: graph.initializers.get(route.init)!, path: route.path };

  const shared = route.values[s]!;
  // The route's own read of the shared value: its next step, or the layer's slot.
  const onRoute = s < route.path.length ? prod.get(route.values[s + 1]!)! : slot.node;
  const isRouteRead = (n: Node, k: number) =>
    n === onRoute && (n !== slot.node || k === slot.index);
  const others: { node: Node; index: number }[] = [];
  for (const n of graph.nodes) {
    n.inputs.forEach((i, k) => {
      if (i === shared && !isRouteRead(n, k)) others.push({ node: n, index: k });
    });
  }
  const readers = others.map((o) => o.node.name);
  for (const o of graph.outputs) if (o.name === shared) readers.push(`graph output ${o.name}`);
  const nestedReads = (counts.get(shared) ?? 0) - 1 - readers.length;
  if (nestedReads > 0) readers.push('a nested graph');

  let reason: TensorCopy['reason'] = 'shared';
  if (role === 'weight') {
    const layers = weightReaders(graph, route.init);
    if (isTied(layers.map((r) => r.route))) {
      reason = 'tied';
      if (!untie) {
        const names = layers.filter((r) => r.node !== slot.node).map((r) => r.node.name);
        throw new SharedTensorError(
          L.name,
          route.init,
          names,
          `layer '${L.name}': its weight '${route.init}' is also the weight of ${names.map((n) => `'${n}'`).join(', ')} (tied); fusing it in place would change them too. Untie (each layer gets its own copy, +${graph.initializers.get(route.init)!.data.length} parameters) or leave the layer out`,
        );
      }
    }
  }
  const base = copiedFrom(shared) ?? shared;
  let copy = `${base}${COPY_SUFFIX}`;
  for (let k = 2; graph.initializers.has(copy) || prod.has(copy); k++)
    copy = `${base}${COPY_SUFFIX}${k}`;
  const tensor = valueAlong(graph, route, s);
  graph.initializers.set(
    copy,
    float32([...tensor.dims], Float32Array.from(tensor.data as Float32Array)),
  );
  const record = { layer: L.name, role, of: shared, copy, elements: tensor.data.length, reason };
  // The layer reads a parameter-named initializer directly, and every other reader is a
  // node input (no graph output, no nested graph): the others move to the copy.
  const othersMove =
    route.values.length === 1 &&
    isParamName(shared) &&
    nestedReads <= 0 &&
    !graph.outputs.some((o) => o.name === shared);
  if (othersMove) {
    for (const o of others) o.node.inputs[o.index] = copy;
    copies.push({ ...record, reader: 'others', readers });
    return { init: shared, tensor: graph.initializers.get(shared)!, path: [] };
  }
  if (onRoute === slot.node) slot.node.inputs[slot.index] = copy;
  else onRoute.inputs[0] = copy;
  copies.push({ ...record, reader: 'layer', readers });
  return { init: copy, tensor: graph.initializers.get(copy)!, path: route.path.slice(s) };
}

/**
 * Fuses trained denoisers into their layers' weights and reports what it added. The
 * result has the original's nodes in the original order, with only the values of the
 * selected layers' weights and biases changed (computed in float64, stored as float32).
 *
 * A fused tensor is never one that another reader sees: where a layer's weight or bias is
 * shared (a zero bias the exporter merged with LayerNorm biases, equal parameters routed
 * through Identity nodes, a weight another op reads), a copy is added and the sharing is
 * split there: the layer's route reads the copy, or, when the layer reads a
 * parameter-named initializer directly, the other readers do (so that `l1.bias` keeps
 * holding l1's bias). Only node inputs change, never the node list or its order; the
 * report lists each copy. A weight tied between layers is copied only with `untie` (the
 * plan's, or the option); otherwise a SharedTensorError is thrown.
 * The input model is not modified.
 * @param model - the original (unconverted) model
 * @param plan - the conversion plan the denoisers were trained with
 * @param values - denoiser parameters by name
 * @param opts - stochastic step, untie
 * @example
 * const { model: fused, report } = fuseWithReport(model, plan, values);
 * report.copies; // [{ layer: 'encoder.layers.0.self_attn.out_proj', role: 'bias', ... }]
 */
export function fuseWithReport(
  model: Model,
  plan: ConversionPlan,
  values: Map<string, Tensor>,
  opts: FuseOptions = {},
): { model: Model; report: FuseReport } {
  const graph = cloneGraph(model.graph);
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const untie = opts.untie ?? plan.untie ?? false;
  const copies: TensorCopy[] = [];
  for (const p of plan.layers) {
    const L = p.layer;
    const node = byName.get(L.node.name);
    if (!node) throw new ModelError(`layer '${L.name}': node '${L.node.name}' is not in the model`);
    if (!graph.initializers.has(L.weight))
      throw new ModelError(`layer '${L.name}': weight initializer '${L.weight}' is missing`);
    const w = ownTensor(graph, L, 'weight', { node, index: 1 }, L.weight, untie, copies);
    let b: WriteTarget | null = null;
    if (L.bias) {
      const slotNode = L.biasSlot ? byName.get(L.biasSlot.node) : node;
      if (!slotNode)
        throw new ModelError(`layer '${L.name}': bias node '${L.biasSlot?.node}' is missing`);
      b = ownTensor(
        graph,
        L,
        'bias',
        { node: slotNode, index: L.biasSlot?.index ?? 2 },
        L.bias,
        untie,
        copies,
      );
    }
    // A NaN or Inf in a weight or a denoiser would spread through the fused layer unseen.
    assertFinite(w.tensor.data, `weight '${L.weight}' of layer '${L.name}'`, L.weight);
    if (b) assertFinite(b.tensor.data, `bias '${L.bias}' of layer '${L.name}'`, L.bias!);
    for (const n of Object.values(p.names)) {
      const t = values.get(n);
      if (t) assertFinite(t.data, `denoiser tensor '${n}'`, n);
    }
    const wd = tensorOf(values, p.names.weight, p)!;
    const bias = b ? (b.tensor.data as Float32Array) : null;
    let newWeight: Float32Array;
    let newBias: Float32Array;
    let biasIsZero: boolean;
    if (p.side === 'input') {
      const swapped = pathTransposes(w.path, L.name);
      // The weight as the layer sees it, in the layer's layout.
      const rows = L.layout === 'out-in' ? L.outFeatures : L.inFeatures;
      const cols = L.layout === 'out-in' ? L.inFeatures : L.outFeatures;
      const stored = w.tensor.data as Float32Array;
      const seen = swapped ? transpose2d(stored, cols, rows) : stored;
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
      if (w.path.some((s) => s.op === 'Transpose')) {
        throw new ModelError(
          `layer '${L.name}': conv weight reached through a Transpose cannot be fused`,
        );
      }
      const [co, ipg, kh, kw] = w.tensor.dims as [number, number, number, number];
      const fused = fuseConvOutput({
        weight: w.tensor.data as Float32Array,
        bias,
        outChannels: co,
        inChannelsPerGroup: ipg,
        kernelH: kh,
        kernelW: kw,
        groups: L.groups ?? 1,
        denoiser: { wd, c: tensorOf(values, p.names.bias, p) ?? new Float32Array(p.dim) },
        coeffs: p.coeffs,
        name: L.name,
        product: opts.products?.get(L.name),
      });
      newWeight = fused.weight;
      newBias = fused.bias;
      biasIsZero = fused.biasIsZero;
    }
    assertFinite(newWeight, `fused weight of layer '${L.name}' (overflow)`, L.weight);
    assertFinite(newBias, `fused bias of layer '${L.name}' (overflow)`, L.bias ?? L.weight);
    graph.initializers.set(w.init, float32([...w.tensor.dims], newWeight));
    if (b) graph.initializers.set(b.init, float32([...b.tensor.dims], newBias));
    else if (!biasIsZero) {
      // Cannot happen for plans from planConversion (bias-less layers get linear denoisers).
      throw new ModelError(`layer '${L.name}' has no bias to hold the fused bias term`);
    }
  }
  const added = (r?: TensorCopy['reason']) =>
    copies.filter((c) => !r || c.reason === r).reduce((s, c) => s + c.elements, 0);
  return {
    model: { ...model, graph },
    report: { copies, addedParameters: added(), untiedParameters: added('tied') },
  };
}

/**
 * Checks the stored weights and biases of every planned layer: a NaN or ±Inf is a
 * NonFiniteError naming the tensor and the layer, raised before any statistics are taken.
 * @param model - the model the plan belongs to
 * @param plan - the layers to check
 */
export function assertFiniteLayers(model: Model, plan: ConversionPlan): void {
  for (const { layer: L } of plan.layers)
    for (const [role, name] of [
      ['weight', L.weight],
      ['bias', L.bias],
    ] as const) {
      const t = name ? model.graph.initializers.get(name) : undefined;
      if (t) assertFinite(t.data, `${role} '${name}' of layer '${L.name}'`, name!);
    }
}

/**
 * Throws a NonFiniteError naming the tensor when `data` holds a NaN or ±Inf.
 * @param data - the values
 * @param what - the tensor in words, for the message
 * @param tensor - its name, for the error's detail
 */
export function assertFinite(data: Tensor['data'], what: string, tensor: string): void {
  if (data instanceof Float32Array || data instanceof Float64Array) {
    // x * 0 is ±0 for a finite x and NaN otherwise: one branch-free pass in four running
    // sums (one would wait on each addition), and the search element by element only
    // when they found something.
    let [a0, a1, a2, a3] = [0, 0, 0, 0];
    const n4 = data.length - (data.length % 4);
    for (let i = 0; i < n4; i += 4) {
      a0 += data[i]! * 0;
      a1 += data[i + 1]! * 0;
      a2 += data[i + 2]! * 0;
      a3 += data[i + 3]! * 0;
    }
    for (let i = n4; i < data.length; i++) a0 += data[i]! * 0;
    if (a0 + a1 + a2 + a3 === 0) return;
  }
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (!Number.isFinite(v))
      throw new NonFiniteError(`${what} is not finite: element ${i} is ${v}`, {
        what: 'tensor',
        tensor,
      });
  }
}

/**
 * Fuses trained denoisers into their layers' weights: {@link fuseWithReport} without the
 * report. Shared tensors get copies; a tied weight without `untie` throws a
 * SharedTensorError, so the result is never silently wrong.
 * @param model - the original (unconverted) model
 * @param plan - the conversion plan the denoisers were trained with
 * @param values - denoiser parameters by name
 * @param opts - stochastic step, untie, `products`: the products W·Wd (Wd·W for a conv)
 *   from {@link fusionProducts} (compiled, multi-threaded); without them they are multiplied
 *   in JavaScript, which is fine for small layers and takes minutes for a ViT-B (350 s)
 * @example
 * const fused = fuseModel(model, plan, values);
 * // a large model: const products = await fusionProducts(model, plan, values, kernels);
 */
export function fuseModel(
  model: Model,
  plan: ConversionPlan,
  values: Map<string, Tensor>,
  opts: FuseOptions = {},
): Model {
  return fuseWithReport(model, plan, values, opts).model;
}

/**
 * A layer's weight as the factor of its fusion product, float64: for an input-side layer
 * W as the layer applies it, out x in (the product is W·Wd); for an output-side conv W
 * as stored, out x (in/groups·kh·kw) (the product is Wd·W). Undefined for a weight that
 * is not an initializer (fuseModel names it) or a conv weight reached through a Transpose.
 * @param model - the original model
 * @param p - the layer's plan
 */
export function fusionWeight(model: Model, p: DenoiserPlan): Float64Array | undefined {
  const L = p.layer;
  const stored = model.graph.initializers.get(L.weight);
  if (!stored) return undefined;
  const data = stored.data as Float32Array;
  if (p.side === 'output')
    return L.weightPath.some((s) => s.op === 'Transpose') ? undefined : Float64Array.from(data);
  const nIn = L.inFeatures;
  const nOut = L.outFeatures;
  // The weight as the layer sees it, as out x in.
  const swapped = pathTransposes(L.weightPath, L.name);
  const rows = L.layout === 'out-in' ? nOut : nIn;
  const cols = L.layout === 'out-in' ? nIn : nOut;
  const seen = swapped ? transpose2d(data, cols, rows) : data;
  return L.layout === 'out-in' ? Float64Array.from(seen) : transpose(seen, nIn, nOut);
}

/**
 * The O(n³) fusion products, W·Wd of the input-side layers and Wd·W of the output-side
 * convs ({@link fusionWeight}), run by the compiled float64 kernels
 * (multi-threaded), for {@link fuseWithReport} / {@link fuseModel} (`products`): the same
 * fused model up to float64 rounding, without multiplying in JavaScript.
 * ({@link fitClosedForm} can compute them as it fits, given {@link fusionWeight}.)
 * @param model - the original model
 * @param plan - the plan the denoisers belong to
 * @param values - denoiser parameters by name
 * @param kernels - the compiled kernels
 * @example const fused = fuseModel(model, plan, values, { products: await fusionProducts(model, plan, values, kernels) });
 */
export async function fusionProducts(
  model: Model,
  plan: ConversionPlan,
  values: Map<string, Tensor>,
  kernels: DenseKernels,
): Promise<Map<string, Float64Array>> {
  const products = new Map<string, Float64Array>();
  for (const p of plan.layers) {
    const w = fusionWeight(model, p);
    if (!w) continue;
    const d = p.dim;
    const wd = tensorOf(values, p.names.weight, p)!;
    const other = w.length / d;
    products.set(
      p.layer.name,
      p.side === 'input'
        ? await matmulCompiled(w, wd, other, d, d, kernels)
        : await matmulCompiled(wd, w, d, d, other, kernels),
    );
  }
  return products;
}

/**
 * One line about a copy, for people.
 * @example
 * describeCopy(c); // "untied weight 'onnx::MatMul_40': enc reads its own copy 'onnx::MatMul_40::copy' (+256 parameters)"
 */
export function describeCopy(c: TensorCopy): string {
  const what = `${c.reason === 'tied' ? 'untied' : 'shared'} ${c.role} '${c.of}'`;
  const others = `${c.readers.slice(0, 3).join(', ')}${c.readers.length > 3 ? `, and ${c.readers.length - 3} more` : ''}`;
  return c.reader === 'layer'
    ? `${what}: ${c.layer} reads its own copy '${c.copy}' (+${c.elements} parameters)`
    : `${what}: ${c.layer} keeps it, its other readers (${others}) read the copy '${c.copy}' (+${c.elements} parameters)`;
}

/** The parameter name a copy stands for (`x::copy2` → `x`), or undefined for other names. */
export function copiedFrom(name: string): string | undefined {
  const m = /^(.*)::copy\d*$/.exec(name);
  return m ? m[1] : undefined;
}
