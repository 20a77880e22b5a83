/**
 * Routes from stored tensors to the layers that read them, and who else reads them.
 *
 * Exporters rarely hand a layer its initializer directly. torch.onnx pre-transposes the
 * weight of a Linear that runs as MatMul into an anonymous constant (`onnx::MatMul_214`),
 * and merges equal initializers (the zero biases and unit LayerNorm weights of an
 * untrained model, the layers of an `nn.TransformerEncoder`, tied weights), routing each
 * duplicate through an `Identity` node that keeps the duplicate's name. A route is the
 * chain of Identity/Transpose nodes from one initializer to the value a layer reads; a
 * tensor is shared when any value on that chain has a reader off the chain.
 */
import { attrInts, type Graph, type Node } from '../onnx/ir.js';
import { float32, strides, type Tensor } from '../onnx/tensor.js';

/** A step between a stored initializer and the value a layer reads. */
export type WeightPath = { op: 'Identity' } | { op: 'Transpose'; perm: number[] };

/** An initializer and the Identity/Transpose chain that brings it to a layer. */
export interface TensorRoute {
  /** The initializer holding the tensor. */
  init: string;
  /** Steps from the initializer towards the layer, in order. */
  path: WeightPath[];
  /** Value names along the chain: `values[0]` is `init`, the last is what the layer reads. */
  values: string[];
}

/** Where a trace stopped when it found no initializer. */
export interface RouteStop {
  /** The value the trace could not follow further. */
  value: string;
  /** Its producer (absent for a graph input). */
  producer?: Node;
}

/** Longest Identity/Transpose chain followed (exports have one or two steps). */
const MAX_STEPS = 16;

/**
 * Follows Identity (and, when allowed, Transpose) nodes from `value` back to an
 * initializer.
 * @param graph - the graph
 * @param value - the value a layer reads
 * @param prod - producers of the graph's values
 * @param allowTranspose - follow Transpose nodes too (weights: yes; biases: no)
 * @returns the route, or where it stopped
 */
export function traceRoute(
  graph: Graph,
  value: string,
  prod: Map<string, Node>,
  allowTranspose: boolean,
): { route: TensorRoute } | { stop: RouteStop } {
  const path: WeightPath[] = [];
  const values = [value];
  let v = value;
  for (let guard = 0; guard < MAX_STEPS; guard++) {
    if (graph.initializers.has(v))
      return { route: { init: v, path: path.reverse(), values: values.reverse() } };
    const p = prod.get(v);
    if (!p) return { stop: { value: v } };
    if (p.opType === 'Identity' && isOnnxDomain(p)) path.push({ op: 'Identity' });
    else if (allowTranspose && p.opType === 'Transpose' && isOnnxDomain(p))
      path.push({ op: 'Transpose', perm: attrInts(p, 'perm', []) });
    else return { stop: { value: v, producer: p } };
    v = p.inputs[0]!;
    values.push(v);
  }
  return { stop: { value: v, producer: prod.get(v) } };
}

function isOnnxDomain(n: Node): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

/**
 * How many times each value is read: once per node input slot, once more when it is a
 * graph output, and once per node of a nested graph (If/Loop/Scan bodies) that reads it
 * from the outer scope.
 */
export function readCounts(graph: Graph): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (v: string) => counts.set(v, (counts.get(v) ?? 0) + 1);
  const visit = (g: Graph, nested: boolean) => {
    for (const n of g.nodes) {
      for (const i of n.inputs) if (i) add(i);
      for (const a of Object.values(n.attrs)) if (a.type === 'graph') visit(a.value, true);
    }
    if (!nested) for (const o of g.outputs) add(o.name);
  };
  visit(graph, false);
  return counts;
}

/**
 * The index of the last value on a route that is read by more than the route itself
 * (its next step, or the layer for the final value); -1 when the whole chain is the
 * layer's alone. Writing there, or anywhere before it, would change other readers.
 * @param route - the route
 * @param counts - {@link readCounts} of the graph
 */
export function lastSharedIndex(route: TensorRoute, counts: Map<string, number>): number {
  for (let i = route.values.length - 1; i >= 0; i--) {
    if ((counts.get(route.values[i]!) ?? 0) > 1) return i;
  }
  return -1;
}

/**
 * A PyTorch state_dict key (`blocks.0.mlp.fc1.weight`, `cls_token`): dotted identifiers.
 * The exporter's own names (`onnx::MatMul_214`, `/blocks/blocks.0/Add_output_0`) and the
 * copies fusion adds (`x::copy`) are not.
 */
export function isParamName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/.test(name);
}

/** The name a route gives its tensor as a parameter: its last parameter-like value name. */
export function routeAlias(route: TensorRoute): string | undefined {
  for (let i = route.values.length - 1; i >= 0; i--) {
    if (isParamName(route.values[i]!)) return route.values[i];
  }
  return undefined;
}

/**
 * Permutes a tensor's axes like ONNX Transpose (`perm` empty: reverse them).
 * @param t - the tensor
 * @param perm - output axis i takes input axis perm[i]
 */
export function permuteTensor(t: Tensor, perm: number[]): Tensor {
  const r = t.dims.length;
  const p = perm.length ? perm : t.dims.map((_, i) => r - 1 - i);
  const outDims = p.map((a) => t.dims[a]!);
  const inStr = strides(t.dims);
  const src = t.data as Float32Array;
  const out = new Float32Array(src.length);
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < out.length; o++) {
    let off = 0;
    for (let k = 0; k < r; k++) off += idx[k]! * inStr[p[k]!]!;
    out[o] = src[off]!;
    // Advance the output multi-index (row-major).
    for (let k = r - 1; k >= 0; k--) {
      if (++idx[k]! < outDims[k]!) break;
      idx[k] = 0;
    }
  }
  return float32(outDims, out);
}

/**
 * The tensor at `route.values[upto]`: the initializer with the route's first `upto`
 * steps applied.
 */
export function valueAlong(graph: Graph, route: TensorRoute, upto: number): Tensor {
  let t = graph.initializers.get(route.init)!;
  for (const s of route.path.slice(0, upto)) if (s.op === 'Transpose') t = permuteTensor(t, s.perm);
  return t;
}
