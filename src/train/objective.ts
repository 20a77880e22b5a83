/**
 * Objectives for {@link runTraining}: a loss graph compiled into a training step, plus
 * the feeds of a batch. {@link graphObjective} turns any loss graph and feeds function
 * into an objective; {@link addTaskLoss}, {@link taskFeeds} and {@link taskBatches} are the
 * classification and ReID task losses, their feeds and their batches.
 */
import { gatherBatch, type ImageDataset } from '../data/dataset.js';
import { epochBatches, pkBatches } from '../data/samplers.js';
import type { LayerContext } from '../layers/context.js';
import { dropoutFeeds } from '../layers/dropout.js';
import { INPUT_NAME } from '../models/types.js';
import type { GraphBuilder, Value } from '../onnx/builder.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import type { Rng } from '../util/rng.js';
import {
  crossEntropy,
  oneHot,
  SAME_ID_NAME,
  sameIdMask,
  TARGET_NAME,
  tripletBatchHard,
} from './losses.js';
import type { EpochStep, Objective } from './run.js';
import { TrainStep, type TrainStepOptions } from './step.js';
import type { EpochStreams } from './streams.js';

/** A loss graph and what to differentiate: a {@link TrainStep}'s options without the session. */
export type GraphSpec = Omit<TrainStepOptions, 'session'>;

/** Feeds of one batch; random draws come from the epoch's streams. */
export type FeedsFn = (batch: Int32Array, streams: EpochStreams) => Record<string, Tensor>;

/**
 * An objective from a loss graph and a feeds function. A fixed graph is compiled once and
 * reused every epoch; a function of the epoch is built and compiled at each epoch start
 * and released at its end (a graph that bakes per-epoch values in, such as a noise seed).
 * @param o.graph - the loss graph (its scalar output `loss`) and the trainable names
 * @param o.feeds - the data feeds of a batch
 * @param o.tracked - scalar outputs to average over each epoch (default: `extraOutputs`)
 * @param o.resumableMidEpoch - false when the graph draws its own noise (default true)
 * @example
 * // A new objective is a graph and its feeds, e.g. DDPM's epsilon prediction:
 * const objective = graphObjective({
 *   graph: { model: unetLossGraph, loss: 'loss', trainable: store.names() },
 *   feeds: (batch, s) => ({ x0: images(batch), noise: normals(batch, s.noise), t: steps(batch, s.noise) }),
 * });
 */
export function graphObjective(o: {
  graph: GraphSpec | ((epoch: number) => GraphSpec);
  feeds: FeedsFn;
  tracked?: string[];
  threads?: number;
  resumableMidEpoch?: boolean;
}): Objective {
  const compile = (spec: GraphSpec) =>
    TrainStep.create({ ...spec, session: { threads: o.threads } });
  const wrap = (step: TrainStep, spec: GraphSpec, perEpoch: boolean): EpochStep => ({
    run: (feeds, params) => step.run(feeds, params),
    feeds: o.feeds,
    tracked: o.tracked ?? spec.extraOutputs ?? [],
    release: perEpoch ? () => step.release() : undefined,
  });
  const graph = o.graph;
  if (typeof graph === 'function') {
    return {
      open: async (epoch) => {
        const spec = graph(epoch);
        return wrap(await compile(spec), spec, true);
      },
      resumableMidEpoch: o.resumableMidEpoch,
    };
  }
  let compiled: Promise<TrainStep> | undefined;
  return {
    open: async () => wrap(await (compiled ??= compile(graph)), graph, false),
    close: async () => {
      if (compiled) await (await compiled).release();
      compiled = undefined;
    },
    resumableMidEpoch: o.resumableMidEpoch,
  };
}

/** The task losses of the paper: classification, or ReID (ID loss plus triplet). */
export type TaskKind = 'classification' | 'reid';

/**
 * Adds a task loss to a graph: cross-entropy of `logits` against the fed (smoothed)
 * one-hot targets; for 'reid' plus the batch-hard triplet loss on `preNeck` (times
 * `tripletWeight` when given).
 * @param b - the builder of the training graph
 * @param o - task, classes, triplet margin and weight
 * @returns the scalar loss value
 */
export function addTaskLoss(
  b: GraphBuilder,
  logits: Value,
  preNeck: Value,
  o: { task: TaskKind; numClasses: number; tripletMargin?: number; tripletWeight?: number },
): Value {
  const { loss: ce } = crossEntropy(b, logits, o.numClasses);
  if (o.task !== 'reid') return ce;
  const { loss: tri } = tripletBatchHard(b, preNeck, o.tripletMargin ?? 0.3);
  return b.add(ce, o.tripletWeight === undefined ? tri : b.mul(tri, b.scalar(o.tripletWeight)));
}

/** Identities per PK batch and images per identity for a batch size. */
export function pkShape(batchSize: number, pkP?: number): { P: number; K: number } {
  const P = pkP ?? 16;
  return { P, K: Math.max(1, Math.floor(batchSize / P)) };
}

/**
 * The batches of an epoch for a task: shuffled batches, or PK batches for 'reid'.
 * @param data - the training set (labels are the identities for 'reid')
 */
export function taskBatches(
  data: ImageDataset,
  task: TaskKind,
  batchSize: number,
  pkP?: number,
): (order: Rng) => Int32Array[] {
  if (task !== 'reid') return (order) => epochBatches(data.size, batchSize, order);
  const { P, K } = pkShape(batchSize, pkP);
  return (order) => pkBatches(data.labels, P, K, order);
}

/** Options of {@link taskFeeds}. */
export interface TaskFeedOptions {
  data: ImageDataset;
  task: TaskKind;
  numClasses: number;
  /** Per-sample input shape [C, H, W]. */
  inputShape: readonly number[];
  labelSmoothing?: number;
  /** Random augmentation of raw images (draws from the augmentation stream). */
  augment?: (x: Float32Array, n: number, rng: Rng) => Float32Array;
  /** Deterministic map of (augmented) images to the model's input. */
  preprocess?: (x: Float32Array, n: number) => Float32Array;
  /** The training graph's layer context: its dropout masks are fed. */
  dropout?: LayerContext;
}

/**
 * Feeds of a task's batch: the images (augmented, then preprocessed), the targets, the
 * same-identity mask for 'reid', and the dropout masks. Augmentation draws come before
 * the dropout draws, from the `augment` and `dropout` streams.
 */
export function taskFeeds(o: TaskFeedOptions): FeedsFn {
  return (idx, streams) => {
    const n = idx.length;
    const { x: raw, y } = gatherBatch(o.data, idx);
    let x = raw;
    if (o.augment) x = o.augment(x, n, streams.augment);
    if (o.preprocess) x = o.preprocess(x, n);
    const feeds: Record<string, Tensor> = {
      [INPUT_NAME]: float32([n, ...o.inputShape], x),
      [TARGET_NAME]: float32([n, o.numClasses], oneHot(y, o.numClasses, o.labelSmoothing ?? 0)),
    };
    if (o.task === 'reid') feeds[SAME_ID_NAME] = float32([n, n], sameIdMask(y));
    if (o.dropout) Object.assign(feeds, dropoutFeeds(o.dropout, n, streams.dropout));
    return feeds;
  };
}
