import { ModelError, UsageError } from '../util/errors.js';
import { globMatch } from '../util/glob.js';
import { attrInt, consumers, type Graph, type Node, producers, topoSort } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import { routeAlias, traceRoute, type TensorRoute, valueAlong, type WeightPath } from './routes.js';

export type { WeightPath } from './routes.js';

/** How the layer's weight maps to y = x Wᵀ + b. */
export type WeightLayout =
  /** [out, in]: Gemm with transB = 1 (PyTorch nn.Linear). */
  | 'out-in'
  /** [in, out]: MatMul(x, W) or Gemm with transB = 0. */
  | 'in-out'
  /** [out, in/groups, kh, kw]: Conv. */
  | 'conv';

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
  /** Values from the weight initializer to the layer's weight input (see {@link TensorRoute}). */
  weightRoute: string[];
  /**
   * Initializer holding the bias, if the layer has one (Gemm C, Conv B, or MatMul → Add),
   * reached directly or through Identity nodes.
   */
  bias?: string;
  /** Values from the bias initializer to the value the layer adds. */
  biasRoute?: string[];
  /** The node input that reads the bias: Gemm/Conv input 2, or one input of the MatMul's Add. */
  biasSlot?: { node: string; index: number };
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
  /**
   * Other layers that read the same stored weight (tied weights). Set only on layers
   * selected with `untie`: fusion gives each its own copy of the weight.
   */
  tiedWith?: string[];
}

/** A MatMul, Gemm or Conv that DenoiseRep does not convert, and why. */
export interface SkippedLayer {
  /** Module path (from the weight name or the node's scope), or the node name. */
  name: string;
  node: string;
  op: string;
  kind: 'linear' | 'conv';
  /** Machine-readable cause. */
  code:
    | 'tied'
    | 'grouped-conv'
    | 'depthwise-conv'
    | 'dynamic-weight'
    | 'weight-dtype'
    | 'weight-rank'
    | 'weight-transposed'
    | 'gemm-attributes'
    | 'dynamic-bias';
  /** One sentence for people. */
  reason: string;
}

/** Which layers to select: a preset filter, or a glob over module paths (`blocks.*.mlp.*`). */
// (`string & {}` keeps the named presets visible to editors next to any string.)
export type LayerFilter = 'all' | 'mlp' | 'linear' | 'conv' | (string & {});

/** Options of {@link surveyLayers}. */
export interface SelectOptions {
  /**
   * Select layers whose weight another layer also reads (tied weights), each to be fused
   * into its own copy of the weight (more parameters). Default: skip them, with a reason.
   */
  untie?: boolean;
}

/** True when a layer passes the filter. */
export function matchesFilter(
  layer: Pick<SelectedLayer, 'kind' | 'name'>,
  filter: LayerFilter,
): boolean {
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

/** Applies a weight path's transposes to the stored dims. */
function pathDims(dims: number[], path: WeightPath[]): number[] {
  let d = [...dims];
  for (const s of path) {
    if (s.op === 'Transpose')
      d = (s.perm.length ? s.perm : d.map((_, i) => d.length - 1 - i)).map((p) => d[p]!);
  }
  return d;
}

/**
 * A layer's module path. From its parameter names (`blocks.0.fc1.weight` → `blocks.0.fc1`;
 * MultiheadAttention's `in_proj_bias` → `in_proj`): the bias's first (an exported Linear's
 * weight is an anonymous constant and a tied weight names another layer, while the bias
 * is the layer's own), else the weight's. A name
 * that disagrees with the node's module scope (`/dec/MatMul` reading `enc`'s tied weight)
 * gives way to the scope.
 */
function moduleName(
  weightAlias: string | undefined,
  biasAlias: string | undefined,
  node: Node,
  init: string,
): string {
  const strip = (n: string | undefined, what: string) => {
    if (!n) return undefined;
    if (n.endsWith(`.${what}`)) return n.slice(0, -what.length - 1);
    if (n.endsWith(`_${what}`)) return n.slice(0, -what.length - 1);
    return undefined;
  };
  // A tied weight carries another layer's name; the bias is the layer's own.
  const fromWeight = strip(weightAlias, 'weight');
  const fromBias = strip(biasAlias, 'bias');
  const fromParams = fromBias ?? fromWeight;
  const scope = scopedModuleName(node.name);
  if (fromParams && (!scope || fromParams === scope || fromParams.startsWith(`${scope}.`)))
    return fromParams;
  return scope ?? fromParams ?? (init || node.name);
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

/** The op types DenoiseRep looks at as embedding layers. */
const CANDIDATE_OPS = new Set(['MatMul', 'Gemm', 'Conv']);

/** Whether a node is a MatMul, Gemm or Conv of the standard domain (a candidate layer). */
export function isCandidateNode(node: Node): boolean {
  return (node.domain === '' || node.domain === 'ai.onnx') && CANDIDATE_OPS.has(node.opType);
}

type Described =
  | { layer: SelectedLayer; route: TensorRoute }
  | { skip: Omit<SkippedLayer, 'name' | 'node' | 'op'>; name: string };

/**
 * Every MatMul, Gemm and Conv of a graph, sorted into the layers DenoiseRep can convert
 * and the ones it skips (each with its reason). A layer can be converted when its weight
 * is a float32 initializer (directly or through Identity/Transpose nodes, as PyTorch
 * exports produce), 2-D for MatMul/Gemm, 4-D for an ungrouped Conv; its bias, if any, is a
 * 1-D initializer reached directly or through Identity nodes. Layers come in forward
 * (topological) order, with unique names.
 *
 * Sharing: a weight read by several layers under one name, or under exporter names
 * (`onnx::MatMul_34` and its Identity copy), is tied: those layers are skipped unless
 * `untie` (each then gets its own copy at fusion). Layers that read one stored tensor under
 * distinct parameter names (the exporter merged equal parameters, e.g. the layers of an
 * untrained `nn.TransformerEncoder`) are separate parameters and are selected; so are
 * layers whose weight or bias another op also reads. Fusion gives them their own copies.
 * @param graph - any IR graph
 * @param opts - `untie` to select tied layers
 */
export function surveyLayers(
  graph: Graph,
  opts: SelectOptions = {},
): { layers: SelectedLayer[]; skipped: SkippedLayer[] } {
  const prod = producers(graph);
  const cons = consumers(graph);
  const viable: { layer: SelectedLayer; route: TensorRoute }[] = [];
  const skipped: SkippedLayer[] = [];
  const sorted = topoSort(graph);
  for (const node of sorted) {
    if (!isCandidateNode(node)) continue;
    const d = describeLayer(graph, node, prod, cons);
    if ('layer' in d) viable.push(d);
    else skipped.push({ name: d.name, node: node.name, op: node.opType, ...d.skip });
  }
  // Unique, stable names: convertible layers first, so that their names do not depend on
  // what is skipped, then the skipped ones.
  const seen = new Map<string, number>();
  const unique = (name: string) => {
    const k = seen.get(name) ?? 0;
    seen.set(name, k + 1);
    return k > 0 ? `${name}#${k}` : name;
  };
  for (const v of viable) v.layer.name = unique(v.layer.name);
  for (const s of skipped) s.name = unique(s.name);

  // Every MatMul/Gemm/Conv whose weight is a stored tensor, convertible or not (a skipped
  // Gemm can share a weight too), grouped by that tensor: fusion checks ties the same way.
  const names = new Map<string, string>([
    ...viable.map((v) => [v.layer.node.name, v.layer.name] as const),
    ...skipped.map((k) => [k.node, k.name] as const),
  ]);
  const byInit = new Map<string, { node: string; route: TensorRoute }[]>();
  for (const node of sorted) {
    if (!isCandidateNode(node) || !node.inputs[1]) continue;
    const t = traceRoute(graph, node.inputs[1], prod, true);
    if (!('route' in t)) continue;
    byInit.set(t.route.init, [
      ...(byInit.get(t.route.init) ?? []),
      { node: node.name, route: t.route },
    ]);
  }
  const layers: SelectedLayer[] = [];
  for (const v of viable) {
    const group = byInit.get(v.route.init)!;
    const tied = isTied(group.map((g) => g.route));
    if (!tied) {
      layers.push(v.layer);
      continue;
    }
    const others = group.filter((g) => g.node !== v.layer.node.name).map((g) => names.get(g.node)!);
    if (opts.untie) {
      v.layer.tiedWith = others;
      layers.push(v.layer);
      continue;
    }
    const size = graph.initializers.get(v.route.init)!.data.length;
    skipped.push({
      name: v.layer.name,
      node: v.layer.node.name,
      op: v.layer.node.opType,
      kind: v.layer.kind,
      code: 'tied',
      reason: `weight '${v.route.init}' is also the weight of ${others.map((o) => `'${o}'`).join(', ')} (tied weights, or equal weights the exporter merged); --untie gives each layer its own copy (+${size} parameters each)`,
    });
  }
  // Skipped layers in forward order too.
  const order = new Map(sorted.map((n, k) => [n.name, k] as const));
  skipped.sort((a, b) => order.get(a.node)! - order.get(b.node)!);
  return { layers, skipped };
}

/**
 * The MatMul, Gemm and Conv nodes whose weight input reaches initializer `init` (directly
 * or through Identity/Transpose nodes), with their routes.
 */
export function weightReaders(graph: Graph, init: string): { node: Node; route: TensorRoute }[] {
  const prod = producers(graph);
  const out: { node: Node; route: TensorRoute }[] = [];
  for (const node of graph.nodes) {
    if (!isCandidateNode(node) || !node.inputs[1]) continue;
    const t = traceRoute(graph, node.inputs[1], prod, true);
    if ('route' in t && t.route.init === init) out.push({ node, route: t.route });
  }
  return out;
}

/**
 * Whether the layers reading one stored weight are tied: more than one reads it, and they
 * do not each name it with a parameter name of their own (an exporter's merge of equal,
 * separate parameters keeps each duplicate's name on an Identity output).
 */
export function isTied(routes: TensorRoute[]): boolean {
  return routes.length > 1 && !distinctAliases(routes);
}

/** Whether every route names its tensor with its own parameter name. */
function distinctAliases(routes: TensorRoute[]): boolean {
  const names = routes.map(routeAlias);
  return names.every((n) => n !== undefined) && new Set(names).size === names.length;
}

/**
 * Finds every layer DenoiseRep can convert (see {@link surveyLayers}), keeping those that
 * pass the filter.
 * @param graph - any IR graph
 * @param filter - 'all', 'mlp', 'linear', 'conv' or comma-separated globs over module paths
 * @param opts - `untie` to select tied layers too
 */
export function selectLayers(
  graph: Graph,
  filter: LayerFilter = 'all',
  opts: SelectOptions = {},
): SelectedLayer[] {
  return surveyLayers(graph, opts).layers.filter((l) => matchesFilter(l, filter));
}

function describeLayer(
  graph: Graph,
  node: Node,
  prod: Map<string, Node>,
  cons: Map<string, Node[]>,
): Described {
  const kind = node.opType === 'Conv' ? 'conv' : 'linear';
  const skip = (code: SkippedLayer['code'], reason: string, name?: string): Described => ({
    skip: { kind, code, reason },
    name: name ?? scopedModuleName(node.name) ?? node.name,
  });
  const w0 = node.inputs[1] ?? '';
  const traced = traceRoute(graph, w0, prod, true);
  if ('stop' in traced) {
    const { value, producer } = traced.stop;
    const from = producer
      ? `the output of ${producer.opType} node '${producer.name}'`
      : graph.inputs.some((i) => i.name === value)
        ? `graph input '${value}'`
        : `'${value}'`;
    return skip(
      'dynamic-weight',
      `its weight is ${from}, not a stored tensor (only Identity and Transpose are followed)`,
    );
  }
  const route = traced.route;
  const stored: Tensor = graph.initializers.get(route.init)!;
  const weightAlias = routeAlias(route);
  let name = moduleName(weightAlias, undefined, node, route.init);
  if (stored.dtype !== 'float32')
    return skip('weight-dtype', `weight '${route.init}' is ${stored.dtype}, not float32`, name);
  const w = pathDims(stored.dims, route.path);
  const layerBase = {
    node,
    weight: route.init,
    weightPath: route.path,
    weightRoute: route.values,
    input: node.inputs[0]!,
  };
  const constBias = (value: string | undefined, size: number) => {
    if (!value) return { ok: true as const };
    const t = traceRoute(graph, value, prod, false);
    if ('stop' in t) return { ok: false as const };
    const b = graph.initializers.get(t.route.init)!;
    if (b.dtype !== 'float32' || b.dims.length !== 1 || b.dims[0] !== size)
      return { ok: false as const };
    return { ok: true as const, route: t.route };
  };
  if (node.opType === 'Conv') {
    if (w.length !== 4)
      return skip('weight-rank', `a ${w.length - 2}-D convolution (only 2-D ones are fused)`, name);
    if (route.path.some((s) => s.op === 'Transpose'))
      return skip('weight-transposed', 'its weight is reached through a Transpose', name);
    const groups = attrInt(node, 'group', 1);
    // A channel-mixing output denoiser would need a dense fused weight for a grouped conv
    // (more FLOPs), so grouped and depthwise convs are left alone.
    if (groups !== 1) {
      const depthwise = w[1] === 1;
      return depthwise
        ? skip(
            'depthwise-conv',
            `depthwise conv (groups = ${groups}): a channel-mixing denoiser would make it a dense conv`,
            name,
          )
        : skip(
            'grouped-conv',
            `grouped conv (groups = ${groups}): a channel-mixing denoiser would make it a dense conv`,
            name,
          );
    }
    const b = constBias(node.inputs[2], w[0]!);
    if (!b.ok) return skip('dynamic-bias', 'its bias is computed in the graph', name);
    name = moduleName(weightAlias, b.route && routeAlias(b.route), node, route.init);
    return {
      route,
      layer: {
        ...layerBase,
        name,
        kind: 'conv',
        layout: 'conv',
        ...(b.route
          ? {
              bias: b.route.init,
              biasRoute: b.route.values,
              biasSlot: { node: node.name, index: 2 },
            }
          : {}),
        output: node.outputs[0]!,
        inFeatures: w[1]! * groups,
        outFeatures: w[0]!,
        groups,
        kernel: w.slice(2),
      },
    };
  }
  if (w.length !== 2)
    return skip('weight-rank', `its weight has rank ${w.length} (a batched MatMul)`, name);
  if (node.opType === 'Gemm') {
    const alpha = node.attrs.alpha?.value ?? 1;
    const beta = node.attrs.beta?.value ?? 1;
    if (attrInt(node, 'transA', 0) !== 0 || alpha !== 1 || beta !== 1)
      return skip('gemm-attributes', 'Gemm with transA, alpha or beta other than 0, 1, 1', name);
    const transB = attrInt(node, 'transB', 0) === 1;
    const [inF, outF] = transB ? [w[1]!, w[0]!] : [w[0]!, w[1]!];
    const b = constBias(node.inputs[2], outF);
    if (!b.ok) return skip('dynamic-bias', 'its bias C is computed in the graph or not 1-D', name);
    name = moduleName(weightAlias, b.route && routeAlias(b.route), node, route.init);
    return {
      route,
      layer: {
        ...layerBase,
        name,
        kind: 'linear',
        layout: transB ? 'out-in' : 'in-out',
        ...(b.route
          ? {
              bias: b.route.init,
              biasRoute: b.route.values,
              biasSlot: { node: node.name, index: 2 },
            }
          : {}),
        output: node.outputs[0]!,
        inFeatures: inF,
        outFeatures: outF,
      },
    };
  }
  // MatMul(x, W) with W [in, out]; a following Add with a 1-D constant of size out is the bias.
  const out = node.outputs[0]!;
  const users = cons.get(out) ?? [];
  let bias: { route: TensorRoute; node: Node; index: number } | undefined;
  if (
    users.length === 1 &&
    users[0]!.opType === 'Add' &&
    !graph.outputs.some((o) => o.name === out)
  ) {
    const add = users[0]!;
    const index = add.inputs[0] === out ? 1 : 0;
    const b = constBias(add.inputs[index], w[1]!);
    if (b.ok && b.route) bias = { route: b.route, node: add, index };
  }
  name = moduleName(weightAlias, bias && routeAlias(bias.route), node, route.init);
  return {
    route,
    layer: {
      ...layerBase,
      name,
      kind: 'linear',
      layout: 'in-out',
      ...(bias
        ? {
            bias: bias.route.init,
            biasRoute: bias.route.values,
            biasSlot: { node: bias.node.name, index: bias.index },
            biasNode: bias.node,
          }
        : {}),
      output: bias ? bias.node.outputs[0]! : out,
      inFeatures: w[0]!,
      outFeatures: w[1]!,
    },
  };
}

/**
 * The weight of a layer as the layer sees it in `graph` (its route's transposes applied),
 * following the layer's node there: after fusion, a layer may read its own copy.
 * @param graph - the original or a fused graph holding the layer's node
 * @param layer - a selected layer
 */
export function layerWeight(graph: Graph, layer: SelectedLayer): Tensor {
  const node = graph.nodes.find((n) => n.name === layer.node.name);
  if (!node) throw new ModelError(`layer '${layer.name}': node '${layer.node.name}' is missing`);
  const t = traceRoute(graph, node.inputs[1] ?? '', producers(graph), true);
  if ('stop' in t)
    throw new ModelError(`layer '${layer.name}': its weight is no longer a stored tensor`);
  return valueAlong(graph, t.route, t.route.path.length);
}

/** Selects layers and fails with a clear message when nothing matches. */
export function selectLayersOrFail(
  graph: Graph,
  filter: LayerFilter,
  source: string,
  opts: SelectOptions = {},
): SelectedLayer[] {
  return surveyOrFail(graph, filter, source, opts).layers;
}

/**
 * {@link surveyLayers} with the filter applied to both lists, failing with a clear
 * message when no layer can be converted or none matches the filter.
 */
export function surveyOrFail(
  graph: Graph,
  filter: LayerFilter,
  source: string,
  opts: SelectOptions = {},
): { layers: SelectedLayer[]; skipped: SkippedLayer[] } {
  const all = surveyLayers(graph, opts);
  if (all.layers.length === 0) {
    const why = all.skipped.length
      ? `; skipped: ${all.skipped
          .slice(0, 3)
          .map((s) => `${s.name}: ${s.reason}`)
          .join('; ')}${all.skipped.length > 3 ? `; and ${all.skipped.length - 3} more` : ''}`
      : '';
    throw new ModelError(
      all.skipped.length
        ? `${source}: no selectable layer: all ${all.skipped.length} candidates are skipped${why}`
        : `${source}: no selectable layer (no MatMul, Gemm or Conv with a constant weight)`,
    );
  }
  const picked = all.layers.filter((l) => matchesFilter(l, filter));
  const skipped = all.skipped.filter((s) => matchesFilter(s, filter));
  if (picked.length === 0 && skipped.length > 0) {
    throw new ModelError(
      `${source}: every layer --layers '${filter}' matches is skipped: ${skipped
        .slice(0, 3)
        .map((s) => `${s.name}: ${s.reason}`)
        .join('; ')}${skipped.length > 3 ? `; and ${skipped.length - 3} more` : ''}`,
    );
  }
  if (picked.length === 0) {
    throw new UsageError(
      `--layers '${filter}' matches none of the ${all.layers.length} layers of ${source} (e.g. ${all.layers
        .slice(0, 4)
        .map((l) => l.name)
        .join(', ')})`,
    );
  }
  return { layers: picked, skipped };
}
