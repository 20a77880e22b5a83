/**
 * Back to PyTorch: the parameters of an ONNX model (fused or not) under their PyTorch
 * state_dict names and in PyTorch layouts, for `model.load_state_dict(..., strict=False)`.
 *
 * torch.onnx keeps a parameter's name on its initializer, or, when it merged equal
 * tensors, on the Identity node output that stands for the duplicate. It does not for a
 * Linear that runs as MatMul: the exporter folds `Transpose(weight)` into an anonymous
 * constant (`onnx::MatMul_214`, `[in, out]`). Such a weight is named from its layer, the
 * bias's name with `bias` replaced by `weight` (`blocks.0.fc1.bias` → `.weight`,
 * MultiheadAttention's `in_proj_bias` → `in_proj_weight`), else the node's module scope,
 * and transposed back to `[out, in]`. Constants the exporter computed from parameters
 * (a conv with its BatchNorm folded in, a gathered relative position bias) have no
 * PyTorch counterpart: they are reported, never given a made-up name.
 */
import { ModelError } from '../util/errors.js';
import { attrInt, type Graph, type Model, type Node, producers } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import { copiedFrom } from './fuse.js';
import { isParamName, permuteTensor, traceRoute, type TensorRoute, valueAlong } from './routes.js';
import { isCandidateNode, isTied, scopedModuleName } from './select.js';

/** One exported tensor and where it came from. */
export interface ExportedWeight {
  /** PyTorch state_dict key. */
  name: string;
  dims: number[];
  /** The ONNX value it was read from. */
  value: string;
  /**
   * 'named': a value carrying the parameter's name (an initializer or a merged duplicate's
   * Identity output); 'layer-weight': an anonymous MatMul/Gemm weight named from its layer
   * (`transposed` when it was stored `[in, out]`).
   */
  source: 'named' | 'layer-weight';
  transposed: boolean;
}

/** An initializer that is not exported, and why. */
export interface NotExported {
  value: string;
  dims: number[];
  reason: string;
}

/** The result of {@link exportTorchWeights}. */
export interface TorchWeights {
  tensors: Map<string, Tensor>;
  exported: ExportedWeight[];
  notExported: NotExported[];
  /** Things to know before loading (tied parameters that fusion untied, ...). */
  notes: string[];
  /** Per MatMul/Gemm/Conv node with a stored weight: the names its weight and bias got. */
  layers: { node: string; weight?: string; bias?: string }[];
}

/** Options of {@link exportTorchWeights}. */
export interface ExportWeightsOptions {
  /** Only the weights and biases of MatMul, Gemm and Conv layers (what fusion changes). */
  layersOnly?: boolean;
}

/** The name a route gives its tensor, copies read as what they copy (`x::copy` → `x`). */
function paramAlias(route: TensorRoute): { name: string; index: number } | undefined {
  for (let i = route.values.length - 1; i >= 0; i--) {
    const v = route.values[i]!;
    const name = copiedFrom(v) ?? v;
    if (isParamName(name)) return { name, index: i };
  }
  return undefined;
}

interface LayerRead {
  node: Node;
  weight: TensorRoute;
  bias?: TensorRoute;
}

/** The bias a layer node adds: Gemm/Conv input 2, or the constant of the MatMul's single Add. */
function biasValue(graph: Graph, node: Node, users: Map<string, Node[]>): string | undefined {
  if (node.opType !== 'MatMul') return node.inputs[2] || undefined;
  const out = node.outputs[0]!;
  const u = users.get(out) ?? [];
  if (u.length !== 1 || u[0]!.opType !== 'Add') return undefined;
  const add = u[0]!;
  return add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
}

function derivedWeightName(read: LayerRead): string | undefined {
  const b = read.bias && paramAlias(read.bias);
  if (b && /bias$/.test(b.name)) return `${b.name.slice(0, -'bias'.length)}weight`;
  const scope = scopedModuleName(read.node.name);
  return scope ? `${scope}.weight` : undefined;
}

/**
 * Reads the parameters of an ONNX model under their PyTorch names and layouts.
 *
 * On an unfused torch.onnx export the result equals the model's state_dict for every
 * parameter that appears as an initializer; on a fused model it gives the same names and
 * shapes with the fused values (a layer that reads its own copy of a shared tensor is
 * exported from the copy). Buffers and parameters the exporter folded away are listed in
 * `notExported`.
 * @param model - an ONNX model exported from PyTorch (fused or not)
 * @param opts - `layersOnly` to export only layer weights and biases
 * @example
 * const { tensors, notExported } = exportTorchWeights(await readModel('fused.onnx'));
 * writeSafetensors('fused.safetensors', tensors);
 */
export function exportTorchWeights(model: Model, opts: ExportWeightsOptions = {}): TorchWeights {
  const graph = model.graph;
  const prod = producers(graph);
  const users = new Map<string, Node[]>();
  for (const n of graph.nodes)
    for (const i of n.inputs) if (i) users.set(i, [...(users.get(i) ?? []), n]);

  const reads: LayerRead[] = [];
  for (const node of graph.nodes) {
    if (!isCandidateNode(node) || !node.inputs[1]) continue;
    const w = traceRoute(graph, node.inputs[1], prod, true);
    if (!('route' in w)) continue;
    const bv = biasValue(graph, node, users);
    const b = bv ? traceRoute(graph, bv, prod, false) : undefined;
    reads.push({ node, weight: w.route, bias: b && 'route' in b ? b.route : undefined });
  }

  const tensors = new Map<string, Tensor>();
  const exported: ExportedWeight[] = [];
  const used = new Set<string>(); // initializers exported under some name
  const put = (e: ExportedWeight, t: Tensor, init: string) => {
    if (tensors.has(e.name)) return;
    tensors.set(e.name, t);
    exported.push(e);
    used.add(init);
  };
  const folded = new Map<string, string>(); // anonymous initializer -> reason
  const weightNames = new Map<Node, string>(); // layer node -> its weight's exported name
  const biasNames = new Map<Node, string>();

  // Layer weights: by the name they carry, unless several layers carry one name (tied,
  // exported once), then by each layer's own bias or scope.
  const aliasCount = new Map<string, number>();
  for (const r of reads) {
    const a = paramAlias(r.weight);
    if (a) aliasCount.set(a.name, (aliasCount.get(a.name) ?? 0) + 1);
  }
  for (const r of reads) {
    const a = paramAlias(r.weight);
    const seen = valueAlong(graph, r.weight, r.weight.path.length);
    if (a && aliasCount.get(a.name) === 1) {
      weightNames.set(r.node, a.name);
      const t = valueAlong(graph, r.weight, a.index);
      put(
        {
          name: a.name,
          dims: t.dims,
          value: r.weight.values[a.index]!,
          source: 'named',
          transposed: false,
        },
        t,
        r.weight.init,
      );
      continue;
    }
    if (r.node.opType === 'Conv') {
      if (!a)
        folded.set(
          r.weight.init,
          `weight of Conv '${r.node.name}' computed by the exporter (a BatchNorm or other parameters folded in): the PyTorch conv and norm parameters cannot be separated`,
        );
      // A conv weight several convs read under one name is exported once, by that name.
      else {
        weightNames.set(r.node, a.name);
        const t = valueAlong(graph, r.weight, a.index);
        put(
          {
            name: a.name,
            dims: t.dims,
            value: r.weight.values[a.index]!,
            source: 'named',
            transposed: false,
          },
          t,
          r.weight.init,
        );
      }
      continue;
    }
    const name = derivedWeightName(r);
    if (!name) {
      folded.set(
        r.weight.init,
        `weight of '${r.node.name}' has no parameter name, no named bias and no module scope`,
      );
      continue;
    }
    weightNames.set(r.node, name);
    // PyTorch's Linear weight is [out, in]: MatMul and Gemm without transB read [in, out].
    const inOut = r.node.opType === 'MatMul' || attrInt(r.node, 'transB', 0) === 0;
    const t = inOut ? permuteTensor(seen, [1, 0]) : seen;
    put(
      { name, dims: t.dims, value: r.node.inputs[1]!, source: 'layer-weight', transposed: inOut },
      t,
      r.weight.init,
    );
  }
  // Layer biases.
  for (const r of reads) {
    if (!r.bias) continue;
    const a = paramAlias(r.bias);
    if (!a) {
      folded.set(
        r.bias.init,
        `bias of ${r.node.opType} '${r.node.name}' computed by the exporter (a BatchNorm folded in)`,
      );
      continue;
    }
    biasNames.set(r.node, a.name);
    const t = valueAlong(graph, r.bias, a.index);
    put(
      {
        name: a.name,
        dims: t.dims,
        value: r.bias.values[a.index]!,
        source: 'named',
        transposed: false,
      },
      t,
      r.bias.init,
    );
  }
  if (!opts.layersOnly) {
    // Every other value carrying a parameter name: initializers and merged duplicates.
    const named = [
      ...graph.initializers.keys(),
      ...graph.nodes.filter((n) => n.opType === 'Identity').map((n) => n.outputs[0]!),
    ];
    for (const v of named) {
      if (!isParamName(v) || tensors.has(v)) continue;
      const t = traceRoute(graph, v, prod, false);
      if (!('route' in t)) continue;
      put(
        {
          name: v,
          dims: graph.initializers.get(t.route.init)!.dims,
          value: v,
          source: 'named',
          transposed: false,
        },
        valueAlong(graph, t.route, 0),
        t.route.init,
      );
    }
  }
  const notExported: NotExported[] = [];
  for (const [k, t] of graph.initializers) {
    if (used.has(k) || isParamName(copiedFrom(k) ?? k)) continue;
    const reason = folded.get(k);
    if (reason) notExported.push({ value: k, dims: t.dims, reason });
    else if (t.dtype === 'float32' && t.data.length > 1)
      notExported.push({
        value: k,
        dims: t.dims,
        reason:
          'a constant the exporter computed (folded buffers or parameters, e.g. a mask or a gathered position bias): no PyTorch parameter holds it',
      });
  }
  if (tensors.size === 0)
    throw new ModelError('no tensor of this model carries a PyTorch parameter name');
  const notes = tiedNotes(reads, weightNames);
  const foldedConvs = reads
    .filter((r) => r.node.opType === 'Conv' && folded.has(r.weight.init))
    .map((r) => scopedModuleName(r.node.name) ?? r.node.name);
  if (foldedConvs.length)
    notes.push(
      `${foldedConvs.length} conv layer${foldedConvs.length > 1 ? 's' : ''} (${foldedConvs.slice(0, 4).join(', ')}${foldedConvs.length > 4 ? ', ...' : ''}) read weights the exporter computed (BatchNorm folded in): PyTorch has no parameter for them, so any change fusion made to them does not come back; leave them out of --layers for an exact round trip`,
    );
  return {
    tensors,
    exported,
    notExported,
    notes,
    layers: reads.map((r) => ({
      node: r.node.name,
      weight: weightNames.get(r.node),
      bias: biasNames.get(r.node),
    })),
  };
}

/**
 * Layers that read one stored weight in the export (tied in PyTorch, or equal tensors the
 * exporter merged under exporter names), and layers that fusion untied (each reads a copy
 * of what was one tensor): loading the untied values into a module whose parameters are
 * still tied keeps only the last one.
 */
function tiedNotes(reads: LayerRead[], names: Map<Node, string>): string[] {
  const groups = new Map<string, LayerRead[]>();
  for (const r of reads) {
    const origin = copiedFrom(r.weight.init) ?? r.weight.init;
    groups.set(origin, [...(groups.get(origin) ?? []), r]);
  }
  const notes: string[] = [];
  for (const [origin, g] of groups) {
    const exported = [...new Set(g.map((r) => names.get(r.node)).filter((n) => n !== undefined))];
    if (exported.length < 2 || !isTied(g.map((r) => r.weight))) continue;
    const untied = new Set(g.map((r) => r.weight.init)).size > 1;
    notes.push(
      untied
        ? `${exported.join(', ')} come from one tensor ('${origin}') that fusion untied: their values now differ; if they are tied in your PyTorch module, untie them before load_state_dict (else the last one loaded wins)`
        : `${exported.join(', ')} read one tensor ('${origin}'): tied in PyTorch (or equal tensors the exporter merged), exported once per name`,
    );
  }
  return notes;
}
