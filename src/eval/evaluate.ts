import { performance } from 'node:perf_hooks';
import type { ImageDataset } from '../data/dataset.js';
import { gatherBatch } from '../data/dataset.js';
import { queryGallerySplit } from '../data/samplers.js';
import { ModelError } from '../util/errors.js';
import { FEATURE_NAME, INPUT_NAME, LOGITS_NAME, type ModelDef } from '../models/types.js';
import { modelWithWeights } from '../models/weights.js';
import type { Model } from '../onnx/ir.js';
import { float32 } from '../onnx/tensor.js';
import { Session } from '../runtime/session.js';
import type { SessionCache } from '../runtime/session-cache.js';
import type { ParamStore } from '../models/params.js';
import { Rng } from '../util/rng.js';
import { classificationMetrics, predictions } from './classification.js';
import { countFlops } from './flops.js';
import { distanceMatrix, evaluateRetrieval } from './retrieval.js';

/** What to score: accuracy, retrieval, or both (default). */
export type EvalTask = 'classification' | 'retrieval' | 'both';

export interface ModelEvaluation {
  /** acc@1 / acc@5 (NaN when the task is 'retrieval'). */
  acc1: number;
  acc5: number;
  /** Retrieval on the test set with classes as identities (see {@link retrievalSplit}). */
  mAP: number;
  rank1: number;
  rank5: number;
  /** Retrieval details (absent when the task is 'classification'). */
  rank10?: number;
  validQueries?: number;
  skippedQueries?: number;
  /** Accuracy per class (absent when the task is 'retrieval'). */
  perClass?: number[];
  images: number;
  /** With `perItem`: 1 where image i's top-1 prediction is its label, else 0. */
  correct?: Uint8Array;
  /** With `perItem`: AP of each retrieval query (NaN for a skipped query). */
  queryAP?: Float64Array;
}

/**
 * The query/gallery protocol for class-labelled data without cameras: a seeded draw of
 * `perClass` queries per class (seed 0, fixed so every model is scored on the same
 * split), every other test image in the gallery, all gallery images of the query's class
 * are true matches, cosine distance on the `feature` output.
 */
export function retrievalSplit(
  labels: Int32Array,
  perClass = 20,
): { query: Int32Array; gallery: Int32Array } {
  return queryGallerySplit(labels, perClass, new Rng(0).fork('retrieval-split'));
}

/**
 * Runs an evaluation model (outputs `logits` and `feature`) over a data set in batches
 * and computes acc@1/acc@5 and retrieval mAP/Rank-1 (metrics from src/eval/*; NaN for
 * the metrics a task leaves out).
 * @param model - evaluation graph with weights as initializers, or a preset definition
 *   with its parameter and buffer values
 * @param data - test images (pixels in [0, 1]; presets normalise in-graph)
 * @param opts - task, batch size, threads, queries per class of the retrieval split
 * @example
 * const r = await evaluateModel({ def: getPreset('mlp-fmnist'), values: store }, test);
 * console.log(r.acc1, r.mAP);
 */
export async function evaluateModel(
  model: Model | { def: ModelDef; values: ParamStore },
  data: ImageDataset,
  opts: {
    task?: EvalTask;
    batchSize?: number;
    threads?: number;
    queriesPerClass?: number;
    /** Share compiled sessions with other calls on the same model. */
    sessions?: SessionCache;
    /** Also return per-image correctness and per-query AP (for paired statistics). */
    perItem?: boolean;
  } = {},
): Promise<ModelEvaluation> {
  if ('def' in model) model = modelWithWeights(model.def, model.values);
  const task = opts.task ?? 'both';
  const outs = model.graph.outputs.map((v) => v.name);
  const need = [
    ...(task === 'retrieval' ? [] : [LOGITS_NAME]),
    ...(task === 'classification' ? [] : [FEATURE_NAME]),
  ];
  const lacking = need.filter((n) => !outs.includes(n));
  if (lacking.length) {
    throw new ModelError(
      `${model.graph.name}: ${task} evaluation needs the output(s) ${lacking.join(', ')} (outputs: ${outs.join(', ')})`,
    );
  }
  const sessionOpts = { threads: opts.threads, source: model.graph.name };
  const session = opts.sessions
    ? await opts.sessions.acquire(model, sessionOpts)
    : await Session.create(model, sessionOpts);
  const bs = opts.batchSize ?? 256;
  const k = data.numClasses;
  const logits = new Float32Array(data.size * k);
  let feats: Float32Array | undefined;
  let dim = 0;
  try {
    for (let s = 0; s < data.size; s += bs) {
      const idx = Int32Array.from({ length: Math.min(bs, data.size - s) }, (_, i) => s + i);
      const { x } = gatherBatch(data, idx);
      const out = await session.run(
        { [INPUT_NAME]: float32([idx.length, data.channels, data.height, data.width], x) },
        need,
      );
      if (task !== 'retrieval') {
        const l = out[LOGITS_NAME]!;
        if (l.dims[1] !== k) {
          throw new ModelError(
            `${model.graph.name}: logits have ${l.dims[1]} classes, data set ${data.name} has ${k}`,
          );
        }
        logits.set(l.data as Float32Array, s * k);
      }
      if (task !== 'classification') {
        const f = out[FEATURE_NAME]!;
        dim = f.dims[1]!;
        feats ??= new Float32Array(data.size * dim);
        feats.set(f.data as Float32Array, s * dim);
      }
    }
  } finally {
    await (opts.sessions ? opts.sessions.give(session) : session.release());
  }
  const cls = task === 'retrieval' ? undefined : classificationMetrics(logits, data.labels, k);
  let correct: Uint8Array | undefined;
  if (opts.perItem && cls) {
    const pred = predictions(logits, k);
    correct = Uint8Array.from(pred, (p, i) => (p === data.labels[i] ? 1 : 0));
  }
  if (task === 'classification') {
    return {
      ...(correct ? { correct } : {}),
      acc1: cls!.acc1,
      acc5: cls!.acc5,
      perClass: cls!.perClass,
      mAP: NaN,
      rank1: NaN,
      rank5: NaN,
      images: data.size,
    };
  }
  const { query, gallery } = retrievalSplit(data.labels, opts.queriesPerClass);
  const pick = (idx: Int32Array) => {
    const out = new Float32Array(idx.length * dim);
    idx.forEach((j, i) => {
      out.set(feats!.subarray(j * dim, (j + 1) * dim), i * dim);
    });
    return out;
  };
  const dist = distanceMatrix(pick(query), pick(gallery), dim, { metric: 'cosine' });
  const ret = evaluateRetrieval({
    dist,
    qLabels: Array.from(query, (i) => data.labels[i]!),
    gLabels: Array.from(gallery, (i) => data.labels[i]!),
    perQuery: opts.perItem,
  });
  return {
    acc1: cls?.acc1 ?? NaN,
    acc5: cls?.acc5 ?? NaN,
    mAP: ret.mAP,
    rank1: ret.rank1,
    rank5: ret.rank5,
    rank10: ret.rank10,
    validQueries: ret.validQueries,
    skippedQueries: ret.skippedQueries,
    perClass: cls?.perClass,
    images: data.size,
    ...(correct ? { correct } : {}),
    ...(ret.queryAP ? { queryAP: ret.queryAP } : {}),
  };
}

/** Parameter count (float initializers) and FLOPs per image of a model. */
export function modelCost(model: Model): { params: number; flops: number } {
  let params = 0;
  for (const t of model.graph.initializers.values())
    if (t.dtype === 'float32') params += t.data.length;
  return { params, flops: countFlops(model).total };
}

/** Median latency per image at a batch size (ms), after warm-up. */
export async function latencyPerImage(
  model: Model,
  shape: [number, number, number],
  opts: { batch?: number; runs?: number; threads?: number } = {},
): Promise<number> {
  const batch = opts.batch ?? 1;
  const s = await Session.create(model, { threads: opts.threads });
  const x = float32(
    [batch, ...shape],
    new Rng(1).fillUniform(new Float32Array(batch * shape[0] * shape[1] * shape[2]), 0, 1),
  );
  const times: number[] = [];
  for (let i = 0; i < (opts.runs ?? 50) + 5; i++) {
    const t0 = performance.now();
    await s.run({ [INPUT_NAME]: x });
    if (i >= 5) times.push(performance.now() - t0);
  }
  await s.release();
  times.sort((a, b) => a - b);
  return times[times.length >> 1]! / batch;
}
