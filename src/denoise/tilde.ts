import { ModelError } from '../util/errors.js';
import { GraphBuilder, type Value } from '../onnx/builder.js';
import { type Model, producers } from '../onnx/ir.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { epochBatches } from '../data/samplers.js';
import type { ComputeRecord } from '../train/compute.js';
import { type FeedsFn, graphObjective } from '../train/objective.js';
import { AdamW, defaultDecayGroups } from '../train/optim.js';
import { ParamStore } from '../models/params.js';
import { Rng } from '../util/rng.js';
import { runTraining } from '../train/run.js';
import { cosineWithWarmup } from '../train/schedule.js';
import { persistentStreams } from '../train/streams.js';
import { finishSurgery, surgeryBuilder } from './graph.js';
import { coefficients, makeSchedule, type ScheduleOptions } from './schedule.js';

/**
 * DenoiseRep~ (the paper's naive variant, for the ablation): a separate feature-level
 * diffusion denoiser after the backbone. A time-conditioned noise predictor
 * ε̂(f, t) = W2 · GELU(W1 f + b1 + E[t]) + b2 (E a learned embedding per step) is trained
 * over random t with the L1 + MSE loss on the frozen backbone's features; at inference
 * it runs `steps` deterministic reverse steps f ← c3 f − c1 ε̂(f, t), t = steps..1,
 * between the feature and the classifier. Unlike fused DenoiseRep it adds nodes, FLOPs
 * and latency.
 */
export interface TildeConfig {
  /** Reverse steps at inference (and the range of t in training). */
  steps: number;
  hidden?: number;
  schedule?: ScheduleOptions;
}

const P = 'denoise_tilde';

/** Parameter names and shapes of the feature denoiser. */
export function tildeParamShapes(dim: number, cfg: TildeConfig): Map<string, number[]> {
  const h = cfg.hidden ?? dim;
  return new Map([
    [`${P}.fc1.weight`, [h, dim]],
    [`${P}.fc1.bias`, [h]],
    [`${P}.time_embed`, [cfg.steps, h]],
    [`${P}.fc2.weight`, [dim, h]],
    [`${P}.fc2.bias`, [dim]],
  ]);
}

/** Initial parameters (PyTorch Linear init, embeddings N(0, 0.02²)), seeded by name. */
export function initTilde(dim: number, cfg: TildeConfig, seed: number): Map<string, Tensor> {
  const rng = new Rng(seed);
  const out = new Map<string, Tensor>();
  for (const [name, dims] of tildeParamShapes(dim, cfg)) {
    const n = dims.reduce((a, b) => a * b, 1);
    const r = rng.fork(name);
    const data = new Float32Array(n);
    if (name.endsWith('time_embed')) r.fillNormal(data, 0, 0.02);
    else {
      const fanIn = name.includes('fc1') ? dim : (cfg.hidden ?? dim);
      r.fillUniform(data, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn));
    }
    out.set(name, float32(dims, data));
  }
  return out;
}

/** ε̂(f, t) in a builder; `temb` is the embedding row of each sample's t, [N, h]. */
function predict(b: GraphBuilder, f: Value, temb: Value, p: (n: string) => Value): Value {
  const h = b.add(b.gemm(f, p(`${P}.fc1.weight`), p(`${P}.fc1.bias`), { transB: 1 }), temb);
  return b.gemm(b.gelu(h), p(`${P}.fc2.weight`), p(`${P}.fc2.bias`), { transB: 1 });
}

function paramValues(b: GraphBuilder, values: Map<string, Tensor>): (n: string) => Value {
  const cache = new Map<string, Value>();
  return (n) => {
    let v = cache.get(n);
    if (!v) {
      const t = values.get(n);
      if (!t) throw new ModelError(`DenoiseRep~: no value for '${n}'`);
      v = b.param(n, t.dims, { kind: 'tensor', tensor: t });
      cache.set(n, v);
    }
    return v;
  };
}

/** The training graph of the feature denoiser: L1 + MSE of ε̂(√ᾱ f + √(1−ᾱ) ε, t) against ε. */
function tildeTrainingGraph(dim: number, init: Map<string, Tensor>): Model {
  const b = new GraphBuilder({ name: 'denoiserep-tilde-train' });
  const f = b.input('feature', 'float32', ['N', dim]);
  const eps = b.input('noise', 'float32', ['N', dim]);
  const s1 = b.input('s1', 'float32', ['N', 1]);
  const s2 = b.input('s2', 'float32', ['N', 1]);
  const tIdx = b.input('t_index', 'int64', ['N']);
  const p = paramValues(b, init);
  const ft = b.add(b.mul(f, s1), b.mul(eps, s2));
  const diff = b.sub(eps, predict(b, ft, b.gather(p(`${P}.time_embed`), tIdx, 0), p));
  b.output(b.add(b.mean(b.abs(diff)), b.mean(b.mul(diff, diff))), 'loss');
  return b.build().model;
}

/** Feeds of a batch of features: per sample its step t, then the batch's noise, from one stream. */
function tildeFeeds(features: Float32Array, dim: number, cfg: TildeConfig): FeedsFn {
  const schedule = makeSchedule(cfg.schedule);
  const coeffs = Array.from({ length: cfg.steps }, (_, i) => coefficients(schedule, i + 1));
  return (idx, streams) => {
    const m = idx.length;
    const rng = streams.noise;
    const fb = new Float32Array(m * dim);
    const nb = new Float32Array(m * dim);
    const a = new Float32Array(m);
    const c = new Float32Array(m);
    const ti = new BigInt64Array(m);
    for (let i = 0; i < m; i++) {
      const src = idx[i]!;
      fb.set(features.subarray(src * dim, src * dim + dim), i * dim);
      const t = rng.int(cfg.steps);
      ti[i] = BigInt(t);
      a[i] = coeffs[t]!.s1;
      c[i] = coeffs[t]!.s2;
    }
    rng.fillNormal(nb);
    return {
      feature: float32([m, dim], fb),
      noise: float32([m, dim], nb),
      s1: float32([m, 1], a),
      s2: float32([m, 1], c),
      t_index: { dtype: 'int64', dims: [m], data: ti },
    };
  };
}

/**
 * Trains the feature denoiser on precomputed features [n, dim] of the frozen backbone: a
 * one-phase configuration of `runTraining`. Each sample draws t uniformly in 1..steps and
 * ε ~ N(0, I) from the seeded Rng.
 */
export async function trainTilde(opts: {
  features: Float32Array;
  dim: number;
  config: TildeConfig;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  threads?: number;
  log?: (rec: Record<string, unknown>) => void;
}): Promise<{ values: Map<string, Tensor>; losses: number[]; compute: ComputeRecord }> {
  const { dim, config: cfg } = opts;
  const n = opts.features.length / dim;
  const init = initTilde(dim, cfg, opts.seed);
  const model = tildeTrainingGraph(dim, init);
  const names = [...init.keys()];
  const store = ParamStore.fromTensors(init);
  const stepsPer = Math.ceil(n / opts.batchSize);
  const out = await runTraining({
    epochs: opts.epochs,
    phases: [
      {
        name: 'denoiserep~',
        updates: ['denoisers'],
        objective: graphObjective({
          graph: { model, loss: 'loss', trainable: names },
          feeds: tildeFeeds(opts.features, dim, cfg),
          threads: opts.threads,
        }),
        params: store,
        optimizer: new AdamW(
          store,
          defaultDecayGroups(names, 0, new Map(names.map((k) => [k, init.get(k)!.dims]))),
        ),
        lr: cosineWithWarmup({
          baseLr: opts.lr,
          warmupSteps: Math.round(0.05 * opts.epochs * stepsPer),
          totalSteps: opts.epochs * stepsPer,
        }),
        batches: (order) => epochBatches(n, opts.batchSize, order),
        streams: persistentStreams(opts.seed, 'tilde'),
      },
    ],
    log: opts.log,
    epochRecord: (s) => ({ phase: s.phase, epoch: s.epoch, loss: s.loss }),
  });
  return {
    values: store.toTensors(names),
    losses: out.history.map((h) => h.loss),
    compute: out.compute,
  };
}

/**
 * The backbone with the feature denoiser inserted: every consumer of the feature (the
 * classifier and the `feature` output) reads the feature after `steps` reverse steps.
 * @param model - evaluation graph with a `feature` output
 */
export function attachTilde(
  model: Model,
  values: Map<string, Tensor>,
  dim: number,
  cfg: TildeConfig,
  featureOutput = 'feature',
): Model {
  const b = surgeryBuilder(model);
  const prod = producers(b.graph).get(featureOutput);
  if (!prod)
    throw new ModelError(`model has no '${featureOutput}' output to attach DenoiseRep~ to`);
  // The feature value itself (the `feature` output is usually an Identity of it).
  const featName = prod.opType === 'Identity' ? prod.inputs[0]! : featureOutput;
  const original = new Set(b.graph.nodes);
  const schedule = makeSchedule(cfg.schedule);
  const p = paramValues(b, values);
  let f = b.value(featName);
  if (f.shape?.length !== 2 || f.shape[1] !== dim)
    throw new ModelError(`feature '${featName}' is not [N, ${dim}]`);
  for (let t = cfg.steps; t >= 1; t--) {
    const c = coefficients(schedule, t);
    const temb = b.reshape(b.slice(p(`${P}.time_embed`), [t - 1], [t], [0]), [
      1,
      cfg.hidden ?? dim,
    ]);
    const e = predict(b, f, temb, p);
    f = b.sub(b.mul(f, b.scalar(c.c3)), b.mul(e, b.scalar(c.c1)));
  }
  for (const node of b.graph.nodes) {
    if (original.has(node)) node.inputs = node.inputs.map((i) => (i === featName ? f.name : i));
  }
  return finishSurgery(model, b);
}
