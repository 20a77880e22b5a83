/**
 * What every arm of a study shares: its settings, backbone and data, the run folder with
 * its caches, the corrupted test set, scoring, fusion checks and training curves.
 *
 * Caching: a trained model is kept as `models/<unit>.onnx` with `train/<unit>.json` (its
 * compute record, curve and fusion check), and a model's scores as
 * `scores/<unit>-<evalKey>.json`. `<unit>` names the arm and seed and ends with a hash of
 * everything that determines the model (backbone weights, data, hyper-parameters), and
 * `<evalKey>` hashes the evaluation settings, so that a changed setting is recomputed and
 * an unchanged one never is. Files are written atomically: a killed run leaves whole
 * files or none.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { corruptDataset, type CorruptionName } from '../data/corruptions.js';
import { gatherBatch, type ImageDataset } from '../data/dataset.js';
import type { ConversionPlan } from '../denoise/plan.js';
import { verifyFusion } from '../denoise/verify.js';
import { evaluateModel } from '../eval/evaluate.js';
import { INPUT_NAME } from '../models/types.js';
import type { Model } from '../onnx/ir.js';
import { readModel, writeModel } from '../onnx/serialize.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { SessionCache } from '../runtime/session-cache.js';
import type { ComputeRecord } from '../train/compute.js';
import { writeJsonAtomic } from '../util/atomic-write.js';
import { DataError } from '../util/errors.js';
import type { Backbone } from './backbone.js';
import type { ArmCompute, TrainingCurve } from './study-report.js';
import { type ModelScores, scoresFromJson, scoresToJson } from './study-stats.js';

/** Bump when a cached file's meaning changes: old caches are then ignored. */
export const CACHE_VERSION = 1;

/** A stable short hash of a JSON-able value (object keys sorted). */
export function settingsHash(v: unknown): string {
  const canon = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(canon)
      : x && typeof x === 'object'
        ? Object.fromEntries(
            Object.keys(x)
              .sort()
              .map((k) => [k, canon((x as Record<string, unknown>)[k])]),
          )
        : x;
  return createHash('sha256')
    .update(JSON.stringify(canon(v)))
    .digest('hex')
    .slice(0, 16);
}

/** The images a study uses (all subsets of one data source, drawn by a fixed seed). */
export interface StudyData {
  /** Training images of the trained arms. */
  train: ImageDataset;
  /** The closed form's moment images (a subset of `train`). */
  moments: ImageDataset;
  /** Clean test images (retrieval queries and gallery too). */
  test: ImageDataset;
  /** The test images the corrupted splits are made from (a subset of `test`). */
  corruptBase: ImageDataset;
  corruptions: readonly CorruptionName[];
  severities: readonly number[];
  queriesPerClass: number;
  /** Seed of the corrupted test set. */
  seed: number;
  /** What identifies these data in cache keys. */
  key: Record<string, unknown>;
}

/** A fusion check as the results keep it. */
export interface FusionCheck {
  ok: boolean;
  maxRelError: number;
}

/** What a cached trained model holds besides its weights. */
export interface TrainedInfo {
  compute: ArmCompute;
  curve: TrainingCurve['points'];
  verify: FusionCheck | null;
}

/** A study stopped on purpose after some units (to test resuming). */
export class Interrupted extends Error {}

/** The compute record as the study keeps it. */
export function armCompute(c: ComputeRecord): ArmCompute {
  return {
    backboneSteps: c.backboneSteps,
    denoiserSteps: c.denoiserSteps,
    lrFirst: c.lrFirst,
    lrLast: c.lrLast,
    dataOrderSeed: c.dataOrderSeed,
    backboneTrace: c.backboneTrace,
  };
}

/** The compute of a model no optimiser step produced (the baseline, the closed form). */
export const NO_COMPUTE: ArmCompute = {
  backboneSteps: 0,
  denoiserSteps: 0,
  lrFirst: null,
  lrLast: null,
  dataOrderSeed: null,
};

/** The shared state of one study run. */
export class StudyContext {
  /** Units loaded from the cache, and computed by this run, in order. */
  readonly cached: string[] = [];
  readonly computed: string[] = [];
  private readonly sessions = new SessionCache(4);
  /** Corrupted splits as 8-bit pixels (they are on that grid), built once per run. */
  private splits: Map<string, Uint8Array> | undefined;
  private readonly evalKey: string;
  private readonly verifyInputs: Record<string, Tensor>;

  /**
   * @param dir - the study's folder (with `models/`, `scores/`, `train/`)
   * @param backbone - the model every arm starts from
   * @param data - the images
   * @param opts - threads, an interruption after `stopAfter` computed units, progress
   */
  constructor(
    readonly dir: string,
    readonly backbone: Backbone,
    readonly data: StudyData,
    private readonly opts: {
      threads?: number;
      stopAfter?: number;
      onProgress?: (msg: string) => void;
    },
  ) {
    this.evalKey = settingsHash({
      v: CACHE_VERSION,
      data: data.key,
      corruptions: data.corruptions,
      severities: data.severities,
      queriesPerClass: data.queriesPerClass,
    });
    const { test } = data;
    const n = Math.min(64, test.size);
    this.verifyInputs = {
      [INPUT_NAME]: float32(
        [n, test.channels, test.height, test.width],
        gatherBatch(
          test,
          Int32Array.from({ length: n }, (_, i) => i),
        ).x,
      ),
    };
  }

  get threads(): number | undefined {
    return this.opts.threads;
  }

  /** Appends a record to `log.jsonl`. */
  log(r: Record<string, unknown>): void {
    appendFileSync(
      join(this.dir, 'log.jsonl'),
      `${JSON.stringify({ time: new Date().toISOString(), ...r })}\n`,
    );
  }

  /** Reports a stage (and logs it). */
  progress(msg: string): void {
    this.opts.onProgress?.(msg);
    this.log({ kind: 'stage', msg });
  }

  /** Marks a unit cached. */
  hit(unit: string): void {
    this.cached.push(unit);
  }

  /** Marks a unit computed; stops the run here when `stopAfter` units are done. */
  done(unit: string, seconds: number): void {
    this.computed.push(unit);
    this.log({ kind: 'computed', unit, seconds });
    if (this.opts.stopAfter !== undefined && this.computed.length >= this.opts.stopAfter)
      throw new Interrupted();
  }

  /**
   * The cache name of a model: arm, seed and a hash of what determines it.
   * @param arm - the arm
   * @param seed - its seed, or null when the model does not depend on one
   * @param extra - the arm's own hyper-parameters
   */
  unit(arm: string, seed: number | null, extra: unknown = {}): string {
    const h = settingsHash({
      v: CACHE_VERSION,
      arm,
      seed,
      backbone: this.backbone.identity,
      data: this.data.key,
      extra,
    });
    return `${arm}${seed === null ? '' : `-s${seed}`}-${h}`;
  }

  private async corruptedSplits(): Promise<Map<string, Uint8Array>> {
    if (this.splits) return this.splits;
    const { corruptBase, corruptions, severities, seed } = this.data;
    this.progress(
      `building the corrupted test set (${corruptions.length} × ${severities.length} splits of ${corruptBase.size} images)`,
    );
    const splits = new Map<string, Uint8Array>();
    for (const c of corruptions) {
      for (const v of severities) {
        const d = await corruptDataset(corruptBase, c, v, seed);
        splits.set(
          `${c}/${v}`,
          Uint8Array.from(d.images, (x) => Math.round(255 * x)),
        );
      }
    }
    return (this.splits = splits);
  }

  /**
   * A model's scores on the clean test images, the retrieval queries and every corrupted
   * split: from the cache, or computed (and cached) now.
   * @param unit - the model's cache name ({@link StudyContext.unit})
   * @param model - the model, loaded only when the scores are not cached
   */
  async score(unit: string, model: () => Promise<Model> | Model): Promise<ModelScores> {
    const file = join(this.dir, 'scores', `${unit}-${this.evalKey}.json`);
    if (existsSync(file)) {
      this.hit(`scores:${unit}`);
      return scoresFromJson(JSON.parse(readFileSync(file, 'utf8')), file);
    }
    const t0 = Date.now();
    const m = await model();
    this.progress(`scoring ${unit}`);
    const { threads } = this.opts;
    const sessions = this.sessions;
    const clean = await evaluateModel(m, this.data.test, {
      perItem: true,
      queriesPerClass: this.data.queriesPerClass,
      threads,
      sessions,
    });
    const corrupted: Record<string, Uint8Array> = {};
    for (const [k, px] of await this.corruptedSplits()) {
      const images = Float32Array.from(px, (v) => v / 255);
      const r = await evaluateModel(
        m,
        { ...this.data.corruptBase, name: k, images },
        {
          task: 'classification',
          perItem: true,
          threads,
          sessions,
        },
      );
      corrupted[k] = r.correct!;
    }
    await sessions.clear();
    const scores: ModelScores = { correct: clean.correct!, queryAP: clean.queryAP!, corrupted };
    writeJsonAtomic(file, { unit, evalKey: this.evalKey, ...scoresToJson(scores) });
    this.done(`scores:${unit}`, (Date.now() - t0) / 1000);
    return scores;
  }

  /**
   * A trained model: from the cache, or trained (and cached) now.
   * @param unit - its cache name
   * @param make - trains it; returns the (fused) evaluation model and what training recorded
   * @returns the model (loaded on demand) and its record
   */
  async trained(
    unit: string,
    make: () => Promise<{ model: Model; info: TrainedInfo }>,
  ): Promise<{ model: () => Promise<Model>; info: TrainedInfo }> {
    const modelFile = join(this.dir, 'models', `${unit}.onnx`);
    const infoFile = join(this.dir, 'train', `${unit}.json`);
    if (existsSync(modelFile) && existsSync(infoFile)) {
      this.hit(`model:${unit}`);
      const info = JSON.parse(readFileSync(infoFile, 'utf8')) as TrainedInfo;
      return { model: () => readModel(modelFile), info };
    }
    const t0 = Date.now();
    this.progress(`training ${unit}`);
    const r = await make();
    writeModel(modelFile, r.model);
    writeJsonAtomic(infoFile, r.info);
    this.done(`model:${unit}`, (Date.now() - t0) / 1000);
    return { model: () => Promise.resolve(r.model), info: r.info };
  }

  /**
   * Checks a fused model against its unfused form run with explicit denoising steps, on
   * clean test images; a failure stops the study (no unverified fusion is reported).
   */
  async verify(
    original: Model,
    fused: Model,
    plan: ConversionPlan,
    values: Map<string, Tensor>,
  ): Promise<FusionCheck> {
    const rep = await verifyFusion({
      original,
      fused,
      plan,
      denoisers: values,
      inputs: this.verifyInputs,
      latencyBatches: [],
      threads: this.opts.threads,
    });
    if (!rep.ok) throw new DataError(`fusion check failed: ${rep.failures.join('; ')}`);
    const maxRelError = Math.max(
      0,
      ...rep.layers.map((l) => l.maxRel),
      ...rep.outputs.map((o) => o.maxRel),
    );
    return { ok: rep.ok, maxRelError };
  }

  /** A training log that keeps the loss of every optimiser step, by phase. */
  curve(): { points: TrainingCurve['points']; log: (r: Record<string, unknown>) => void } {
    const points: TrainingCurve['points'] = [];
    const log = (r: Record<string, unknown>) => {
      if (r.kind === 'step')
        points.push({ step: points.length + 1, loss: Number(r.loss), phase: String(r.phase) });
    };
    return { points, log };
  }

  /** Releases the compiled sessions. */
  async release(): Promise<void> {
    await this.sessions.clear();
  }
}
