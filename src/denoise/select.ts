import { ModelError, UsageError } from '../util/errors.js';
import { globMatch } from '../util/glob.js';
import {
  attrInt,
  attrInts,
  consumers,
  type Graph,
  type Node,
  producers,
  topoSort,
} from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';

/** How the layer's weight maps to y = x Wᵀ + b. */
export type WeightLayout =
  /** [out, in]: Gemm with transB = 1 (PyTorch nn.Linear). */
  | 'out-in'
  /** [in, out]: MatMul(x, W) or Gemm with transB = 0. */
  | 'in-out'
  /** [out, in/groups, kh, kw]: Conv. */
  | 'conv';

/** A step between the stored initializer and the weight the layer sees. */
export type WeightPath = { op: 'Identity' } | { op: 'Transpose'; perm: number[] };

/** One embedding layer DenoiseRep can attach a denoiser to. */
export interface SelectedLayer {
  /** Module path (the weight name without `.weight`), e.g. `blocks.0.mlp.fc1`. */
  name: string;
  node: Node;
  kind: 'linear' | 'conv';
  layout: WeightLayout;
  /** Initializer holding the weight. */
  weight: string;
  /** Transpose/Identity nodes between the initializer and the layer, in order. */
  weightPath: WeightPath[];
  /** Initializer holding the bias, if the layer has one (Gemm C, Conv B, or MatMul → Add). */
  bias?: string;
  /** For MatMul layers, the Add node that applies the bias. */
  biasNode?: Node;
  /** Value the layer reads (the activation): where an input-side denoiser acts. */
  input: string;
  /** Value the layer writes (after its bias): where an output-side (conv) denoiser acts. */
  output: string;
  inFeatures: number;
  outFeatures: number;
  /** Conv only. */
  groups?: number;
  kernel?: number[];
}

/** Which layers to select: a preset filter, or a glob over module paths (`blocks.*.mlp.*`). */
export type LayerFilter = 'all' | 'mlp' | 'linear' | 'conv' | string;

/** True when a layer passes the filter. */
export function matchesFilter(layer: SelectedLayer, filter: LayerFilter): boolean {
  switch (filter) {
    case 'all':
      return true;
    case 'linear':
      return layer.kind === 'linear';
    case 'conv':
      return layer.kind === 'conv';
    case 'mlp':
      // timm's Mlp (blocks.i.mlp.fc1/fc2): the layers the ReID recipe converts.
      return layer.kind === 'linear' && /(^|\.)mlp\.fc[12]$/.test(layer.name);
    default:
      return filter.split(',').some((g) => globMatch(g.trim(), layer.name));
  }
}

/** Follows Identity/Transpose nodes from a value back to an initializer. */
function traceWeight(
  graph: Graph,
  value: string,
  prod: Map<string, Node>,
): { init: string; path: WeightPath[] } | undefined {
  const path: WeightPath[] = [];
  let v = value;
  for (let guard = 0; guard < 8; guard++) {
    if (graph.initializers.has(v)) return { init: v, path: path.reverse() };
    const p = prod.get(v);
    if (!p) return undefined;
    if (p.opType === 'Identity') path.push({ op: 'Identity' });
    else if (p.opType === 'Transpose')
      path.push({ op: 'Transpose', perm: attrInts(p, 'perm', []) });
    else return undefined;
    v = p.inputs[0]!;
  }
  return undefined;
}

/** Applies a weight path's transposes to the stored dims. */
function pathDims(dims: number[], path: WeightPath[]): number[] {
  let d = [...dims];
  for (const s of path) {
    if (s.op === 'Transpose')
      d = (s.perm.length ? s.perm : d.map((_, i) => d.length - 1 - i)).map((p) => d[p]!);
  }
  return d;
}

function moduleName(weight: string, node: Node): string {
  if (weight.endsWith('.weight')) return weight.slice(0, -'.weight'.length);
  return scopedModuleName(node.name) ?? (weight || node.name);
}

/**
 * The module path in a torch.onnx node name (PyTorch >= 1.13 names nodes by module scope,
 * `/blocks/blocks.0/attn/qkv/MatMul`), for layers whose weight is an anonymous constant
 * (`onnx::MatMul_214`, a Linear's pre-transposed weight): `blocks.0.attn.qkv`. A scope
 * that extends the one before it (`blocks` then `blocks.0`) replaces it.
 * @returns undefined for names that are not of this form
 */
export function scopedModuleName(nodeName: string): string | undefined {
  if (!nodeName.startsWith('/')) return undefined;
  const parts = nodeName.slice(1).split('/');
  if (parts.length < 2 || parts.some((s) => s === '')) return undefined;
  const path: string[] = [];
  for (const seg of parts.slice(0, -1)) {
    const last = path[path.length - 1];
    if (last !== undefined && seg.startsWith(`${last}.`)) path[path.length - 1] = seg;
    else path.push(seg);
  }
  return path.join('.');
}

/**
 * Finds every layer DenoiseRep can convert: each MatMul and Gemm whose weight is an
 * initializer (directly or through Identity/Transpose nodes, as PyTorch exports produce)
 * with a 2-D weight, and each Conv with an initializer weight. Layers come in forward
 * (topological) order. A weight shared by several layers is refused for all of them,
 * since one fused weight cannot serve two different denoisers.
 * @param graph - any IR graph
 * @param filter - 'all', 'mlp', 'linear', 'conv' or comma-separated globs over module paths
 */
export function selectLayers(graph: Graph, filter: LayerFilter = 'all'): SelectedLayer[] {
  const prod = producers(graph);
  const cons = consumers(graph);
  const found: SelectedLayer[] = [];
  const weightUse = new Map<string, number>();
  for (const node of topoSort(graph)) {
    const layer = describeLayer(graph, node, prod, cons);
    if (!layer) continue;
    weightUse.set(layer.weight, (weightUse.get(layer.weight) ?? 0) + 1);
    found.push(layer);
  }
  const unshared = found.filter((l) => weightUse.get(l.weight) === 1);
  // Unique, stable names even when exports reuse a weight name pattern.
  const seen = new Map<string, number>();
  for (const l of unshared) {
    const k = seen.get(l.name) ?? 0;
    seen.set(l.name, k + 1);
    if (k > 0) l.name = `${l.name}#${k}`;
  }
  return unshared.filter((l) => matchesFilter(l, filter));
}

function describeLayer(
  graph: Graph,
  node: Node,
  prod: Map<string, Node>,
  cons: Map<string, Node[]>,
): SelectedLayer | undefined {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return undefined;
  if (node.opType !== 'MatMul' && node.opType !== 'Gemm' && node.opType !== 'Conv')
    return undefined;
  const traced = traceWeight(graph, node.inputs[1] ?? '', prod);
  if (!traced) return undefined;
  const stored: Tensor = graph.initializers.get(traced.init)!;
  if (stored.dtype !== 'float32') return undefined;
  const w = pathDims(stored.dims, traced.path);
  const name = moduleName(traced.init, node);
  if (node.opType === 'Conv') {
    if (w.length !== 4) return undefined;
    const bias =
      node.inputs[2] && graph.initializers.has(node.inputs[2]) ? node.inputs[2] : undefined;
    const groups = attrInt(node, 'group', 1);
    // A channel-mixing output denoiser would need a dense fused weight for a grouped conv
    // (more FLOPs), so grouped and depthwise convs are left alone.
    if (groups !== 1) return undefined;
    return {
      name,
      node,
      kind: 'conv',
      layout: 'conv',
      weight: traced.init,
      weightPath: traced.path,
      bias,
      input: node.inputs[0]!,
      output: node.outputs[0]!,
      inFeatures: w[1]! * groups,
      outFeatures: w[0]!,
      groups,
      kernel: w.slice(2),
    };
  }
  if (w.length !== 2) return undefined;
  if (node.opType === 'Gemm') {
    if (attrInt(node, 'transA', 0) !== 0) return undefined;
    const transB = attrInt(node, 'transB', 0) === 1;
    const alpha = node.attrs.alpha?.value ?? 1;
    const beta = node.attrs.beta?.value ?? 1;
    if (alpha !== 1 || beta !== 1) return undefined;
    const c = node.inputs[2];
    const bias =
      c && graph.initializers.has(c) && graph.initializers.get(c)!.dims.length <= 1 ? c : undefined;
    if (c && !bias) return undefined; // a non-constant or 2-D C is not a layer bias
    const [inF, outF] = transB ? [w[1]!, w[0]!] : [w[0]!, w[1]!];
    return {
      name,
      node,
      kind: 'linear',
      layout: transB ? 'out-in' : 'in-out',
      weight: traced.init,
      weightPath: traced.path,
      bias,
      input: node.inputs[0]!,
      output: node.outputs[0]!,
      inFeatures: inF,
      outFeatures: outF,
    };
  }
  // MatMul(x, W) with W [in, out]; a following Add with a 1-D constant of size out is the bias.
  const out = node.outputs[0]!;
  const users = cons.get(out) ?? [];
  let bias: string | undefined;
  let biasNode: Node | undefined;
  if (users.length === 1 && users[0]!.opType === 'Add') {
    const add = users[0]!;
    const other = add.inputs[0] === out ? add.inputs[1]! : add.inputs[0]!;
    const t = graph.initializers.get(other);
    if (t && t.dtype === 'float32' && t.dims.length === 1 && t.dims[0] === w[1]) {
      bias = other;
      biasNode = add;
    }
  }
  return {
    name,
    node,
    kind: 'linear',
    layout: 'in-out',
    weight: traced.init,
    weightPath: traced.path,
    bias,
    biasNode,
    input: node.inputs[0]!,
    output: biasNode ? biasNode.outputs[0]! : out,
    inFeatures: w[0]!,
    outFeatures: w[1]!,
  };
}

/** Selects layers and fails with a clear message when nothing matches. */
export function selectLayersOrFail(
  graph: Graph,
  filter: LayerFilter,
  source: string,
): SelectedLayer[] {
  const all = selectLayers(graph, 'all');
  if (all.length === 0) {
    throw new ModelError(
      `${source}: no selectable layer (no MatMul, Gemm or Conv with a constant weight)`,
    );
  }
  const picked = all.filter((l) => matchesFilter(l, filter));
  if (picked.length === 0) {
    throw new UsageError(
      `--layers '${filter}' matches none of the ${all.length} layers of ${source} (e.g. ${all
        .slice(0, 4)
        .map((l) => l.name)
        .join(', ')})`,
    );
  }
  return picked;
}
