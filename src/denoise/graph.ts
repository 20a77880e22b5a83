import { ModelError } from '../util/errors.js';
import { GraphBuilder, type Value } from '../onnx/builder.js';
import { cloneGraph, type Model, onnxOpset, topoSort } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import type { ConversionPlan, DenoiserPlan } from './plan.js';

/** The paper's noise-prediction loss (L1 + MSE), or MSE alone (the closed form's objective). */
export type DenoiseLossKind = 'l1+mse' | 'mse';

/** Denoiser parameter values as graph values of one builder. */
interface DenoiserValues {
  w: Value;
  bias: Value | null;
  embed: Value | null;
}

/** A builder over a copy of `model`'s graph, ready for surgery. */
export function surgeryBuilder(model: Model): GraphBuilder {
  return new GraphBuilder({ graph: cloneGraph(model.graph), opset: onnxOpset(model) });
}

/** Finishes surgery: nodes back in topological order, wrapped as a model like `model`. */
export function finishSurgery(model: Model, b: GraphBuilder): Model {
  b.graph.nodes = topoSort(b.graph);
  return {
    ...model,
    graph: b.graph,
    opsetImports: model.opsetImports.length
      ? model.opsetImports
      : [{ domain: '', version: b.opset }],
  };
}

/**
 * Adds the denoiser parameters of every planned layer to the graph as initializers with
 * their stable names, from `values` (missing names fail with the layer named).
 */
export function addDenoiserParams(
  b: GraphBuilder,
  plan: ConversionPlan,
  values: Map<string, Tensor>,
): Map<string, DenoiserValues> {
  const out = new Map<string, DenoiserValues>();
  const get = (name: string, p: DenoiserPlan, dims: number[]) => {
    const t = values.get(name);
    if (!t)
      throw new ModelError(`layer '${p.layer.name}': no value for denoiser parameter '${name}'`);
    if (t.dims.join() !== dims.join()) {
      throw new ModelError(
        `layer '${p.layer.name}': denoiser parameter '${name}' has shape [${t.dims}], expected [${dims}]`,
      );
    }
    return b.param(name, dims, { kind: 'tensor', tensor: t });
  };
  for (const p of plan.layers) {
    out.set(p.layer.name, {
      w: get(p.names.weight, p, [p.dim, p.dim]),
      bias: p.names.bias ? get(p.names.bias, p, [p.dim]) : null,
      embed: p.names.embed ? get(p.names.embed, p, [p.dim]) : null,
    });
  }
  return out;
}

/**
 * ε̂ of one denoiser applied to `x`: input side (features on the last axis)
 * ε̂ = (x + e) Wdᵀ + bd; output side (channels on axis 1, NCHW) a 1x1 channel mix
 * ε̂ = Wd y + c at every position.
 */
export function predictNoise(b: GraphBuilder, x: Value, p: DenoiserPlan, d: DenoiserValues): Value {
  if (p.side === 'input') {
    const h = d.embed ? b.add(x, d.embed) : x;
    // One Gemm (weight as [out, in] with transB, bias fused) over all positions.
    const r = h.shape?.length ?? 2;
    if (r === 2) return b.gemm(h, d.w, d.bias, { transB: 1 });
    const y = b.gemm(b.reshape(h, [-1, p.dim]), d.w, d.bias, { transB: 1 });
    return b.op1('Reshape', [y, b.op1('Shape', [h])]);
  }
  const rank = x.shape?.length ?? 4;
  const kernel = [p.dim, p.dim, ...new Array<number>(rank - 2).fill(1)];
  return b.conv(x, b.reshape(d.w, kernel), d.bias);
}

/** One deterministic reverse step x' = c3 x − c1 ε̂(x). */
export function denoiseStep(b: GraphBuilder, x: Value, p: DenoiserPlan, d: DenoiserValues): Value {
  const eps = predictNoise(b, x, p, d);
  return b.sub(
    b.mul(x, b.scalar(p.coeffs.c3, x.dtype)),
    b.mul(eps, b.scalar(p.coeffs.c1, x.dtype)),
  );
}

/** The value a planned layer's denoiser reads: the layer input, or the conv output. */
export function denoisedValueName(p: DenoiserPlan): string {
  return p.side === 'input' ? p.layer.input : p.layer.output;
}

/**
 * The per-layer noise-prediction losses, added to a builder over a backbone graph: for
 * each layer, x_t = √ᾱ_t x + √(1−ᾱ_t) ε with ε ~ N(0, I) drawn in-graph by
 * RandomNormalLike (seeded per layer; the sequence repeats for a given seed and number
 * of runs of one session), and loss_l = mean|ε − ε̂(x_t)| + mean (ε − ε̂(x_t))².
 * @returns the sum of the layer losses and each layer's loss value
 */
export function addDenoiseLosses(
  b: GraphBuilder,
  plan: ConversionPlan,
  params: Map<string, DenoiserValues>,
  noiseSeed: number,
  loss: DenoiseLossKind = 'l1+mse',
): { total: Value; perLayer: Value[] } {
  const perLayer: Value[] = [];
  // One noise draw per distinct feature shape, shared by the layers of that shape: each
  // layer's loss stays an unbiased estimate, and drawing noise (the costliest part of a
  // step with many layers) is done a few times instead of once per layer.
  const noiseByShape = new Map<string, Value>();
  plan.layers.forEach((p) => {
    const x = b.value(denoisedValueName(p));
    const key = JSON.stringify(x.shape);
    let noise = noiseByShape.get(key);
    if (!noise) {
      noise = b.op1('RandomNormalLike', [x], {
        seed: noiseSeed * 1000 + noiseByShape.size,
        dtype: 1,
      });
      noiseByShape.set(key, noise);
    }
    const xt = b.add(b.mul(x, b.scalar(p.coeffs.s1)), b.mul(noise, b.scalar(p.coeffs.s2)));
    const diff = b.sub(noise, predictNoise(b, xt, p, params.get(p.layer.name)!));
    const mse = b.mean(b.mul(diff, diff));
    const l = loss === 'mse' ? mse : b.add(b.mean(b.abs(diff)), mse);
    perLayer.push(b.output(l, `denoise_loss::${p.layer.name}`));
  });
  b.graph.outputs = b.graph.outputs.filter((o) => !o.name.startsWith('denoise_loss::'));
  const total = perLayer.length === 1 ? perLayer[0]! : b.op1('Sum', perLayer);
  return { total, perLayer };
}

/**
 * The trained, unfused model: each planned layer's input (or conv output) goes through
 * one deterministic reverse step before (after) the layer. This is what fusion must
 * reproduce exactly.
 */
export function buildDenoisedModel(
  model: Model,
  plan: ConversionPlan,
  values: Map<string, Tensor>,
): { model: Model; layerOutputs: Map<string, string> } {
  const b = surgeryBuilder(model);
  const params = addDenoiserParams(b, plan, values);
  const original = new Set(b.graph.nodes);
  // Value of the denoised graph that the fused layer's output must equal.
  const layerOutputs = new Map<string, string>();
  for (const p of plan.layers) {
    const d = params.get(p.layer.name)!;
    const node = b.graph.nodes.find((n) => n.name === p.layer.node.name)!;
    if (p.side === 'input') {
      const x = b.value(p.layer.input);
      node.inputs[0] = denoiseStep(b, x, p, d).name;
      layerOutputs.set(p.layer.name, p.layer.output);
    } else {
      const y = b.value(p.layer.output);
      const users = b.graph.nodes.filter((n) => original.has(n) && n.inputs.includes(y.name));
      const y2 = denoiseStep(b, y, p, d);
      for (const u of users) u.inputs = u.inputs.map((i) => (i === y.name ? y2.name : i));
      layerOutputs.set(p.layer.name, rewireOutputs(b, y.name, y2.name) ? y.name : y2.name);
    }
  }
  return { model: finishSurgery(model, b), layerOutputs };
}

/** Graph outputs that were `from` now read `to` through an Identity keeping the name. */
function rewireOutputs(b: GraphBuilder, from: string, to: string): boolean {
  if (!b.graph.outputs.some((o) => o.name === from)) return false;
  // The producer of `from` must keep writing a differently named value: rename it.
  const renamed = b.uniqueName(`${from}::pre_denoise`);
  for (const n of b.graph.nodes) {
    n.outputs = n.outputs.map((o) => (o === from ? renamed : o));
    n.inputs = n.inputs.map((i) => (i === from ? renamed : i));
  }
  b.graph.nodes.push({
    name: b.uniqueName(`${from}::identity`),
    opType: 'Identity',
    domain: '',
    inputs: [to],
    outputs: [from],
    attrs: {},
  });
  return true;
}

/**
 * Rewires a builder's graph so each planned layer computes with fused weights
 * W'(W, Wd) built in-graph (phase B of label-augmented training: the task loss trains W
 * through the fusion, the denoisers are fixed inputs):
 * Linear [out,in]: W' = W A, b' = b − c1 W v; [in,out]: W' = Aᵀ W, b' = b − c1 vᵀ W;
 * Conv: W' = A W (over [out, in·k·k]), b' = A b − c1 c; with A = c3 I − c1 Wd, v = Wd e + bd.
 */
export function useFusedWeights(
  b: GraphBuilder,
  plan: ConversionPlan,
  params: Map<string, DenoiserValues>,
): void {
  for (const p of plan.layers) {
    const d = params.get(p.layer.name)!;
    const node = b.graph.nodes.find((n) => n.name === p.layer.node.name)!;
    const w = b.value(node.inputs[1]!);
    const eye = b.constant(identityTensor(p.dim), 'eye');
    const a = b.sub(b.mul(eye, b.scalar(p.coeffs.c3)), b.mul(d.w, b.scalar(p.coeffs.c1)));
    const c1 = b.scalar(p.coeffs.c1);
    let wNew: Value;
    let v: Value | null = null;
    if (p.side === 'input') {
      if (d.bias) v = d.embed ? b.add(b.op1('MatMul', [d.w, d.embed]), d.bias) : d.bias;
      wNew = p.layer.layout === 'out-in' ? b.matmul(w, a) : b.matmul(b.transpose(a, [1, 0]), w);
    } else {
      const dims = w.shape as number[];
      const flat = b.reshape(w, [dims[0]!, -1]);
      wNew = b.reshape(b.matmul(a, flat), dims);
    }
    node.inputs[1] = wNew.name;
    if (!p.layer.bias) continue;
    // The slot reading the bias (it may arrive through Identity nodes, so not by its name).
    const biasSlot = p.layer.biasSlot ?? { node: node.name, index: 2 };
    const bias = b.value(p.layer.bias);
    let bNew: Value;
    if (p.side === 'input') {
      const wv = p.layer.layout === 'out-in' ? b.op1('MatMul', [w, v!]) : b.op1('MatMul', [v!, w]);
      bNew = b.sub(bias, b.mul(wv, c1));
    } else {
      const ab = b.op1('MatMul', [a, bias]);
      bNew = d.bias ? b.sub(ab, b.mul(d.bias, c1)) : ab;
    }
    const target = b.graph.nodes.find((n) => n.name === biasSlot.node)!;
    target.inputs[biasSlot.index] = bNew.name;
  }
}

function identityTensor(n: number): Tensor {
  const data = new Float32Array(n * n);
  for (let i = 0; i < n; i++) data[i * n + i] = 1;
  return { dtype: 'float32', dims: [n, n], data };
}
