import { ModelError } from '../util/errors.js';
import type { DType } from './dtype.js';
import type { Tensor } from './tensor.js';

/** A dimension: a number, a symbolic name (`'N'`, the batch) or null when unknown. */
export type Dim = number | string | null;

/** Type of a graph value. `shape: null` means the rank is unknown. */
export interface ValueInfo {
  name: string;
  dtype: DType;
  shape: Dim[] | null;
  /**
   * True when the file declares no type for this value (a graph output written by a
   * tool that left it out): `dtype` is then a placeholder, and the value is written back
   * without a type, for ONNX Runtime to infer.
   */
  untyped?: boolean;
}

/** A typed attribute value, mirroring AttributeProto's fields. */
export type AttrValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: Graph }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] };

/**
 * A node. `inputs` holds value names; an empty string marks an omitted optional input,
 * as in ONNX.
 */
export interface Node {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

/** A graph. Initializers are constant tensors keyed by value name. */
export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, Tensor>;
  /** Known types of intermediate values (ONNX's value_info). */
  valueInfo: Map<string, ValueInfo>;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

/** A model: a graph plus the opsets it uses and file-level metadata. */
export interface Model {
  graph: Graph;
  opsetImports: OpsetImport[];
  irVersion: number;
  producerName: string;
  producerVersion: string;
  metadata: Record<string, string>;
  /**
   * Model-local functions (ModelProto.functions), each kept as its encoded FunctionProto
   * bytes exactly as read, so that a round trip writes them back unchanged (fields this
   * project does not model included). Nodes calling them are ordinary nodes of the
   * function's domain.
   */
  functions?: Uint8Array[];
  /**
   * Where the model's initializers were stored as external data when it was read:
   * initializer name → location (relative to the model's folder), byte offset, and the
   * absolute path of the file read. Writing keeps this layout (which tensors go out, which
   * share a file, in which order), with offsets recomputed and file names derived from the
   * new model's own name; it never writes over a file listed here.
   */
  externalData?: Map<string, { location: string; offset: number; path: string }>;
}

/** The opset every graph this project builds uses (forward and backward graphs). */
export const DEFAULT_OPSET = 17;

/** The lowest ai.onnx opset a model file may use. */
export const MIN_OPSET = 11;

/** The highest ai.onnx opset a model file may use. */
export const MAX_OPSET = 21;

/** An empty graph. */
export function emptyGraph(name = 'graph'): Graph {
  return {
    name,
    nodes: [],
    inputs: [],
    outputs: [],
    initializers: new Map(),
    valueInfo: new Map(),
  };
}

/** Wraps a graph as a model with the default ai.onnx opset. */
export function makeModel(graph: Graph, opset = DEFAULT_OPSET): Model {
  return {
    graph,
    opsetImports: [{ domain: '', version: opset }],
    irVersion: 8,
    producerName: 'denoiserep',
    producerVersion: '0.1.0',
    metadata: {},
  };
}

/** The ai.onnx opset version of a model. */
export function onnxOpset(model: Model): number {
  const imp = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  return imp?.version ?? DEFAULT_OPSET;
}

/** A deep-enough copy of a graph: node, list and map containers are new; tensors are shared. */
export function cloneGraph(g: Graph): Graph {
  return {
    name: g.name,
    nodes: g.nodes.map((n) => ({
      ...n,
      inputs: [...n.inputs],
      outputs: [...n.outputs],
      attrs: { ...n.attrs },
    })),
    inputs: g.inputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    outputs: g.outputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    initializers: new Map(g.initializers),
    valueInfo: new Map(g.valueInfo),
  };
}

/** Map from value name to the node producing it. */
export function producers(g: Graph): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) m.set(o, n);
  return m;
}

/** Map from value name to the nodes consuming it. */
export function consumers(g: Graph): Map<string, Node[]> {
  const m = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (!i) continue;
      let list = m.get(i);
      if (!list) m.set(i, (list = []));
      list.push(n);
    }
  }
  return m;
}

/**
 * Nodes in topological order (stable: ties keep the original order). Fails with a
 * ModelError naming a node on the cycle, or the first input that no node, graph input
 * or initializer provides.
 */
export function topoSort(g: Graph): Node[] {
  const available = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  const prod = producers(g);
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (i && !available.has(i) && !prod.has(i)) {
        throw new ModelError(
          `node '${n.name}' (${n.opType}) reads '${i}', which no node, graph input or initializer provides`,
        );
      }
    }
  }
  const indeg = new Map<Node, number>();
  const users = consumers(g);
  for (const n of g.nodes) {
    const deps = new Set(n.inputs.filter((i) => i && !available.has(i) && prod.has(i)));
    indeg.set(n, deps.size);
  }
  const order: Node[] = [];
  const ready: Node[] = g.nodes.filter((n) => indeg.get(n) === 0);
  const index = new Map(g.nodes.map((n, i) => [n, i]));
  const done = new Set<Node>();
  while (ready.length > 0) {
    // Keep original order among ready nodes: pick the smallest index.
    let best = 0;
    for (let k = 1; k < ready.length; k++) {
      if (index.get(ready[k]!)! < index.get(ready[best]!)!) best = k;
    }
    const n = ready.splice(best, 1)[0]!;
    order.push(n);
    done.add(n);
    for (const o of n.outputs) {
      if (!o) continue;
      for (const u of users.get(o) ?? []) {
        if (done.has(u)) continue;
        const deps = new Set(u.inputs.filter((i) => i && !available.has(i) && prod.has(i)));
        let remaining = 0;
        for (const d of deps) if (!done.has(prod.get(d)!)) remaining++;
        if (remaining === 0 && !ready.includes(u) && indeg.get(u) !== -1) {
          indeg.set(u, -1);
          ready.push(u);
        }
      }
    }
  }
  if (order.length !== g.nodes.length) {
    const stuck = g.nodes.find((n) => !done.has(n))!;
    throw new ModelError(
      `graph '${g.name}' has a cycle through node '${stuck.name}' (${stuck.opType})`,
    );
  }
  return order;
}

/** Reads an int attribute, or the default. */
export function attrInt(n: Node, name: string, dflt: number): number;
export function attrInt(n: Node, name: string): number | undefined;
export function attrInt(n: Node, name: string, dflt?: number): number | undefined {
  const a = n.attrs[name];
  if (a === undefined) return dflt;
  if (a.type !== 'int') throw badAttr(n, name, 'int', a.type);
  return a.value;
}

/** Reads a float attribute, or the default. */
export function attrFloat(n: Node, name: string, dflt: number): number;
export function attrFloat(n: Node, name: string): number | undefined;
export function attrFloat(n: Node, name: string, dflt?: number): number | undefined {
  const a = n.attrs[name];
  if (a === undefined) return dflt;
  if (a.type === 'float' || a.type === 'int') return a.value;
  throw badAttr(n, name, 'float', a.type);
}

/** Reads an ints attribute, or the default. */
export function attrInts(n: Node, name: string, dflt: number[]): number[];
export function attrInts(n: Node, name: string): number[] | undefined;
export function attrInts(n: Node, name: string, dflt?: number[]): number[] | undefined {
  const a = n.attrs[name];
  if (a === undefined) return dflt;
  if (a.type !== 'ints') throw badAttr(n, name, 'ints', a.type);
  return a.value;
}

/** Reads a string attribute, or the default. */
export function attrString(n: Node, name: string, dflt: string): string;
export function attrString(n: Node, name: string): string | undefined;
export function attrString(n: Node, name: string, dflt?: string): string | undefined {
  const a = n.attrs[name];
  if (a === undefined) return dflt;
  if (a.type !== 'string') throw badAttr(n, name, 'string', a.type);
  return a.value;
}

/** Reads a tensor attribute. */
export function attrTensor(n: Node, name: string): Tensor | undefined {
  const a = n.attrs[name];
  if (a === undefined) return undefined;
  if (a.type !== 'tensor') throw badAttr(n, name, 'tensor', a.type);
  return a.value;
}

function badAttr(n: Node, name: string, want: string, got: string): ModelError {
  return new ModelError(
    `node '${n.name}' (${n.opType}): attribute '${name}' should be ${want}, got ${got}`,
  );
}
