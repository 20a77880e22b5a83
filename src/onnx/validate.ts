import { ModelError } from '../util/errors.js';
import { type Graph, topoSort } from './ir.js';
import { inferShapes } from './shapes.js';

export interface ValidateOptions {
  /** File or model name that starts every error message. */
  source?: string;
  /**
   * ai.onnx op types the caller can handle; any other op (or any op of another domain)
   * is refused with the node's name. Omitted: every op is accepted.
   */
  knownOps?: ReadonlySet<string> | readonly string[];
  /**
   * ai.onnx opset for type checking: when given, shape and dtype inference runs over
   * the graph, so that (for example) Add(float32, int64) fails naming its node. Every
   * op must then have a shape rule.
   */
  inferTypes?: number;
}

function isOnnxDomain(domain: string): boolean {
  return domain === '' || domain === 'ai.onnx';
}

/**
 * Gives every unnamed node a name, and renames later nodes whose name repeats an earlier
 * one (`Add_3`, then `Add_3_1`), so that every node has a unique, non-empty name that
 * error messages can use. Renames in place, subgraphs in attributes included; returns the
 * number of nodes renamed.
 * @param graph - the graph
 * @example
 * ensureNodeNames(model.graph); // then validateGraph(model.graph) passes the name check
 */
export function ensureNodeNames(graph: Graph): number {
  const used = new Set<string>();
  for (const n of graph.nodes) if (n.name) used.add(n.name);
  const seen = new Set<string>();
  let renamed = 0;
  graph.nodes.forEach((n, i) => {
    if (n.name && !seen.has(n.name)) {
      seen.add(n.name);
      return;
    }
    const base = n.name || `${n.opType}_${i}`;
    let name = base;
    for (let k = 1; used.has(name) || seen.has(name); k++) name = `${base}_${k}`;
    n.name = name;
    used.add(name);
    seen.add(name);
    renamed++;
  });
  for (const n of graph.nodes)
    for (const a of Object.values(n.attrs))
      if (a.type === 'graph') renamed += ensureNodeNames(a.value);
  return renamed;
}

/**
 * Checks that a graph is well formed, failing with a ModelError that names the node or
 * value at fault: node names unique and non-empty; every node input produced by a node,
 * a graph input or an initializer (or, in a subgraph, by the enclosing graphs); every
 * value produced once; no cycle; every graph output provided; with `knownOps`, no op
 * outside that set (ops of other domains named with their domain); with `inferTypes`,
 * consistent dtypes and shapes.
 * @param graph - the graph to check (subgraphs in attributes are checked too)
 * @param opts - source name for messages, accepted ops, opset for type checking
 * @example
 * validateGraph(model.graph, { source: 'model.onnx', knownOps: knownShapeOps() });
 */
export function validateGraph(graph: Graph, opts: ValidateOptions = {}): void {
  const prefix = opts.source ? `${opts.source}: ` : '';
  const known = opts.knownOps ? new Set(opts.knownOps) : undefined;
  checkGraph(graph, prefix, known, new Set());
  if (opts.inferTypes !== undefined) {
    try {
      inferShapes(graph, opts.inferTypes, { unknownOps: 'error' });
    } catch (err) {
      if (err instanceof ModelError)
        throw new ModelError(`${prefix}${err.message}`, { cause: err });
      throw err;
    }
  }
}

function checkGraph(
  graph: Graph,
  prefix: string,
  known: Set<string> | undefined,
  outer: ReadonlySet<string>,
): void {
  const where = graph.name ? `graph '${graph.name}': ` : '';
  const p = `${prefix}${where}`;
  const names = new Set<string>();
  graph.nodes.forEach((n, i) => {
    if (!n.name) throw new ModelError(`${p}node #${i} (${n.opType}) has no name`);
    if (names.has(n.name))
      throw new ModelError(`${p}two nodes are named '${n.name}' (the second is node #${i})`);
    names.add(n.name);
  });

  // Who provides each value: a graph input, an initializer or exactly one node output.
  const provider = new Map<string, string>();
  const provide = (v: string, by: string) => {
    const prev = provider.get(v);
    if (prev) throw new ModelError(`${p}value '${v}' is produced twice: by ${prev} and by ${by}`);
    provider.set(v, by);
  };
  for (const v of graph.inputs) provide(v.name, 'a graph input');
  for (const k of graph.initializers.keys()) {
    // IR < 4 lists initializers among the inputs too; that is not a second producer.
    if (provider.get(k) === 'a graph input') continue;
    provide(k, 'an initializer');
  }
  for (const n of graph.nodes)
    for (const o of n.outputs) if (o) provide(o, `node '${n.name}' (${n.opType})`);

  for (const n of graph.nodes) {
    for (const i of n.inputs) {
      if (i && !provider.has(i) && !outer.has(i)) {
        throw new ModelError(
          `${p}node '${n.name}' (${n.opType}) reads '${i}', which no node, graph input or initializer provides`,
        );
      }
    }
    if (known) {
      if (!isOnnxDomain(n.domain)) {
        throw new ModelError(
          `${p}node '${n.name}' uses op '${n.opType}' of domain '${n.domain}'; only ai.onnx ops are supported`,
        );
      }
      if (!known.has(n.opType))
        throw new ModelError(`${p}node '${n.name}' uses unsupported op '${n.opType}'`);
    }
  }
  for (const o of graph.outputs) {
    if (!provider.has(o.name) && !outer.has(o.name))
      throw new ModelError(`${p}graph output '${o.name}' is not produced by any node or input`);
  }
  try {
    topoSort(
      graph.nodes.some((n) => n.inputs.some((i) => outer.has(i))) ? withOuter(graph, outer) : graph,
    );
  } catch (err) {
    if (err instanceof ModelError) throw new ModelError(`${prefix}${err.message}`, { cause: err });
    throw err;
  }

  // Subgraphs (If/Loop/Scan bodies) see every value of the enclosing scopes.
  let scope: Set<string> | undefined;
  for (const n of graph.nodes) {
    for (const [attr, a] of Object.entries(n.attrs)) {
      if (a.type !== 'graph') continue;
      scope ??= new Set([...outer, ...provider.keys()]);
      checkGraph(a.value, `${p}node '${n.name}' attribute '${attr}': `, known, scope);
    }
  }
}

/** The graph with the outer-scope values it reads declared as inputs, for topoSort. */
function withOuter(graph: Graph, outer: ReadonlySet<string>): Graph {
  const own = new Set([...graph.inputs.map((v) => v.name), ...graph.initializers.keys()]);
  const extra = [...outer].filter((v) => !own.has(v));
  return {
    ...graph,
    inputs: [
      ...graph.inputs,
      ...extra.map((name) => ({ name, dtype: 'float32' as const, shape: null })),
    ],
  };
}
