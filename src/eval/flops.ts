import { attrInt, type Dim, type Model, onnxOpset, topoSort } from '../onnx/ir.js';
import { bindDim, dimProduct, inferShapes } from '../onnx/shapes.js';

export interface FlopCount {
  /** FLOPs of MatMul, Gemm and Conv (2 per multiply-accumulate), the usual convention. */
  total: number;
  /** One FLOP per output element of every other op with a float output. */
  elementwise: number;
  /** Dense FLOPs by node name, in graph order. */
  byNode: { name: string; opType: string; flops: number }[];
}

/**
 * Counts the FLOPs of one forward pass for one sample: symbolic dims of the inputs are
 * bound to 1 (the batch), so the count is per image.
 * @param model - a model whose shapes can be inferred
 */
export function countFlops(model: Model, symbols: Record<string, number> = {}): FlopCount {
  // Symbols bound in the inputs and in declared types alike (value_info measured by ONNX
  // Runtime writes the batch as `N`), any unnamed one as 1.
  const bind = <V extends { shape: Dim[] | null }>(v: V): V => ({
    ...v,
    shape: v.shape && v.shape.map((d) => bindDim(d, symbols, 1)),
  });
  const graph = {
    ...model.graph,
    inputs: model.graph.inputs.map(bind),
    outputs: model.graph.outputs.map(bind),
    valueInfo: new Map([...model.graph.valueInfo].map(([k, v]) => [k, bind(v)])),
  };
  const infos = inferShapes(graph, onnxOpset(model));
  const shape = (n: string) => infos.get(n)?.shape ?? null;
  const num = (s: Dim[] | null) => {
    const p = s ? dimProduct(s) : null;
    return typeof p === 'number' ? p : 0;
  };
  let total = 0;
  let elementwise = 0;
  const byNode: FlopCount['byNode'] = [];
  for (const node of topoSort(graph)) {
    const out = shape(node.outputs[0]!);
    let f: number;
    if (node.opType === 'MatMul') {
      const a = shape(node.inputs[0]!);
      const k = a ? a[a.length - 1] : null;
      f = typeof k === 'number' ? 2 * num(out) * k : 0;
    } else if (node.opType === 'Gemm') {
      const a = shape(node.inputs[0]!);
      const k = a ? (attrInt(node, 'transA', 0) ? a[0] : a[1]) : null;
      f = typeof k === 'number' ? 2 * num(out) * k : 0;
    } else if (node.opType === 'Conv' || node.opType === 'ConvTranspose') {
      const w = shape(node.inputs[1]!);
      const perOut = w ? num(w.slice(1)) : 0;
      f =
        node.opType === 'Conv'
          ? 2 * num(out) * perOut
          : 2 * num(shape(node.inputs[0]!)) * num(w ? w.slice(1) : null);
    } else {
      const dt = infos.get(node.outputs[0]!)?.dtype;
      if (dt === 'float32' || dt === 'float64') elementwise += num(out);
      continue;
    }
    total += f;
    byNode.push({ name: node.name, opType: node.opType, flops: f });
  }
  return { total, elementwise, byNode };
}
