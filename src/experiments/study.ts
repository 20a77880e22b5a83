/**
 * The study: does DenoiseRep help a strong backbone, by how much beyond noise, on clean and
 * on corrupted images, and at which noise level? A composition of the project's parts:
 *
 * - arms, each with a control that differs only in the denoisers and the denoising loss:
 *   `label-free-cf` (closed form) and `label-free` (the paper's training, backbone frozen)
 *   against the `baseline` (the backbone itself: no backbone step either way), and
 *   `label-aug` against `control`, the loop's compute-matched control (the same backbone
 *   steps, learning rate at each step, batches, order, augmentation and dropout draws);
 * - every fused model verified against its unfused form;
 * - every model scored on the same clean test images, retrieval queries and corrupted
 *   images (src/data/corruptions.ts), and compared with paired statistics
 *   (src/experiments/study-stats.ts);
 * - a noise-scale sweep of the closed-form arm from one eigendecomposition per layer.
 *
 * Resumable: each trained model is cached under a hash of what determines it, and each
 * model's scores under that hash plus the evaluation settings, in `runs/<id>/`
 * (src/experiments/study-context.ts). A killed study, run again with the same settings,
 * continues where it stopped. The arms are in src/experiments/study-arms.ts.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type CorruptionName, CORRUPTION_NAMES } from '../data/corruptions.js';
import { type ImageDataset, subset } from '../data/dataset.js';
import { FMNIST_DEFAULT_PATH, loadFashionMnist } from '../data/fashion-mnist.js';
import { planConversion } from '../denoise/plan.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.js';
import { DataError, UsageError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import {
  type ArmsOutput,
  baselineArm,
  closedFormArms,
  labelAugArms,
  labelFreeArm,
  noArms,
} from './study-arms.js';
import { defaultBackbone, loadBackbone } from './backbone.js';
import { Interrupted, settingsHash, StudyContext, type StudyData } from './study-context.js';
import {
  type ArmCompute,
  conclusions,
  type StudyResults,
  studyMarkdown,
  studyReportHtml,
} from './study-report.js';
import { summarizeStudy } from './study-stats.js';

/** The arms a study can run (their controls are added). */
export const STUDY_ARMS = ['label-free-cf', 'label-free', 'label-aug'] as const;
export type StudyArm = (typeof STUDY_ARMS)[number];

/** Settings of a study; {@link studySettings} gives the defaults and `--quick`. */
export interface StudySettings {
  /** `zoo:<preset>` or a pretrain output / checkpoint folder. */
  backbone: string;
  /** `embedded`, `fashion-mnist` (the full set) or an IDX folder. */
  data: string;
  seeds: number[];
  arms: StudyArm[];
  corruptions: CorruptionName[];
  severities: number[];
  /** Multiples of the paper's betas for the closed-form sweep. */
  noiseScales: number[];
  /** Training images for the trained arms (0: the whole split). */
  trainImages: number;
  /** Of those, images for the closed form's input moments (0: all of them). */
  momentImages: number;
  /** Clean test images (0: the whole split). */
  testImages: number;
  /** Images of each corrupted split (a subset of the clean test images). */
  corruptedImages: number;
  /** Retrieval queries per class (classes as identities). */
  queriesPerClass: number;
  /** Layers to convert. */
  layers: string;
  batchSize: number;
  labelFree: { epochs: number; lr: number };
  labelAug: {
    /** Epochs in all, alternating denoiser and backbone phases. */
    epochs: number;
    phaseEpochs: number;
    lr: number;
    backboneLr: number;
    denoiseWeight: number;
    weightDecay: number;
    labelSmoothing: number;
  };
  /** Bootstrap resamples. */
  resamples: number;
  /** Seed of the corrupted test set and of the data subsets. */
  dataSeed: number;
}

/** The settings of the default study, or of `--quick` (seconds, not minutes). */
export function studySettings(quick: boolean): StudySettings {
  return {
    backbone: defaultBackbone(),
    data: existsSync(FMNIST_DEFAULT_PATH) ? 'fashion-mnist' : 'embedded',
    seeds: quick ? [0] : [0, 1, 2],
    arms: [...STUDY_ARMS],
    corruptions: [...CORRUPTION_NAMES],
    severities: quick ? [3] : [1, 2, 3, 4, 5],
    noiseScales: quick ? [1, 10, 100] : [1, 3, 10, 20, 50, 100],
    trainImages: quick ? 512 : 20000,
    momentImages: quick ? 512 : 10000,
    testImages: quick ? 500 : 0,
    corruptedImages: quick ? 100 : 1000,
    queriesPerClass: quick ? 10 : 50,
    layers: 'all',
    batchSize: 128,
    labelFree: { epochs: 1, lr: 1e-3 },
    labelAug: {
      epochs: 2,
      phaseEpochs: 1,
      lr: 1e-3,
      backboneLr: 3e-4,
      denoiseWeight: 0.01,
      weightDecay: 0.05,
      labelSmoothing: 0.1,
    },
    resamples: quick ? 1000 : 2000,
    dataSeed: 0,
  };
}

function resolveData(data: string): string {
  if (data === 'embedded') return 'embedded';
  if (data === 'fashion-mnist') {
    if (!existsSync(FMNIST_DEFAULT_PATH))
      throw new UsageError(
        `--data fashion-mnist needs ${FMNIST_DEFAULT_PATH} (apt-get install dataset-fashion-mnist)`,
      );
    return FMNIST_DEFAULT_PATH;
  }
  if (!existsSync(data))
    throw new UsageError(
      `--data ${data}: no such folder (use embedded, fashion-mnist or an IDX folder)`,
    );
  return data;
}

/** The first n images of a seeded permutation, in ascending order (all when n is 0). */
function pick(ds: ImageDataset, n: number, seed: number, label: string): ImageDataset {
  if (n <= 0 || n >= ds.size) return ds;
  const idx = new Rng(seed).fork(label).permutation(ds.size).slice(0, n).sort();
  return subset(ds, idx);
}

function checkSettings(s: StudySettings): void {
  const posInt = (k: string, v: number, min = 1) => {
    if (!Number.isInteger(v) || v < min)
      throw new UsageError(`${k} must be an integer >= ${min}, got ${v}`);
  };
  if (s.seeds.length === 0) throw new UsageError('--seeds: at least one seed');
  if (new Set(s.seeds).size !== s.seeds.length) throw new UsageError('--seeds: a seed is repeated');
  for (const a of s.arms)
    if (!(STUDY_ARMS as readonly string[]).includes(a))
      throw new UsageError(`unknown arm '${a}' (arms: ${STUDY_ARMS.join(', ')})`);
  if (s.noiseScales.length === 0 && s.arms.includes('label-free-cf'))
    throw new UsageError('--noise-scales: at least one level');
  for (const k of s.noiseScales)
    if (!(k > 0) || !Number.isFinite(k))
      throw new UsageError(`--noise-scales: ${k} is not a positive number`);
  for (const v of s.severities)
    if (!Number.isInteger(v) || v < 1 || v > 5)
      throw new UsageError(`severity ${v} is not in 1..5`);
  posInt('trainImages', s.trainImages, 0);
  posInt('momentImages', s.momentImages, 0);
  posInt('testImages', s.testImages, 0);
  posInt('corruptedImages', s.corruptedImages);
  posInt('queriesPerClass', s.queriesPerClass);
  posInt('batchSize', s.batchSize);
  posInt('label-free epochs', s.labelFree.epochs);
  posInt('label-aug epochs', s.labelAug.epochs, 2);
}

/** What a study run returns. */
export interface StudyRun {
  dir: string;
  results: StudyResults;
  /** Units (trained models, moments, scores) loaded from the cache rather than computed. */
  cached: string[];
  computed: string[];
  /** The run stopped early (`stopAfter`); no results were written. */
  interrupted: boolean;
}

/** The study's images: subsets of one source, drawn by the data seed. */
async function studyData(s: StudySettings): Promise<StudyData> {
  const src = resolveData(s.data);
  const trainAll = await loadFashionMnist(src, 'train');
  const testAll = await loadFashionMnist(src, 'test');
  const train = pick(trainAll, s.trainImages, s.dataSeed, 'study-train');
  const moments = pick(train, s.momentImages, s.dataSeed, 'study-moments');
  const test = pick(testAll, s.testImages, s.dataSeed, 'study-test');
  const corruptBase = pick(test, s.corruptedImages, s.dataSeed, 'study-corrupted');
  const perClass = new Int32Array(test.numClasses);
  for (const y of test.labels) perClass[y]!++;
  const fewest = Math.min(...perClass);
  if (fewest <= s.queriesPerClass)
    throw new UsageError(
      `--queries-per-class ${s.queriesPerClass}: a class has only ${fewest} of the ${test.size} test images (more test images, or fewer queries)`,
    );
  return {
    train,
    moments,
    test,
    corruptBase,
    corruptions: s.corruptions,
    severities: s.severities,
    queriesPerClass: s.queriesPerClass,
    seed: s.dataSeed,
    key: {
      source: s.data,
      train: train.size,
      moments: moments.size,
      test: test.size,
      corrupted: corruptBase.size,
      dataSeed: s.dataSeed,
      layers: s.layers,
      batchSize: s.batchSize,
    },
  };
}

/**
 * Runs (or resumes) a study and writes `results.json`, `table.md` and `report.html`.
 * @param opts.settings - overrides of {@link studySettings}
 * @param opts.root - the runs folder (default `runs`); the study lives in `<root>/<id>/`
 * @param opts.id - the study's folder name (default: `study-` and a hash of the settings,
 *   so that the same command continues the same study)
 * @param opts.stopAfter - stop after this many newly computed units (tests of resuming)
 * @example
 * const { results } = await runStudy({ quick: true });
 */
export async function runStudy(opts: {
  quick?: boolean;
  settings?: Partial<StudySettings>;
  root?: string;
  id?: string;
  threads?: number;
  command?: string;
  stopAfter?: number;
  onProgress?: (msg: string) => void;
}): Promise<StudyRun> {
  const t0 = performance.now();
  const s: StudySettings = { ...studySettings(opts.quick ?? false), ...opts.settings };
  checkSettings(s);
  const backbone = loadBackbone(s.backbone);
  if (backbone.def.numClasses !== 10)
    throw new DataError(
      `${backbone.ref} has ${backbone.def.numClasses} classes; the study's data (Fashion-MNIST) has 10`,
    );
  const id = opts.id ?? `study-${settingsHash({ ...s, backbone: backbone.identity })}`;
  const dir = join(opts.root ?? 'runs', id);
  for (const sub of ['models', 'scores', 'train']) mkdirSync(join(dir, sub), { recursive: true });
  writeJsonAtomic(join(dir, 'study.json'), { id, settings: s, backbone: backbone.ref });
  const data = await studyData(s);
  const ctx = new StudyContext(dir, backbone, data, opts);
  const plan = planConversion(backbone.model.graph, { filter: s.layers, source: backbone.ref });
  const parts: ArmsOutput[] = [];
  let interrupted = false;
  try {
    parts.push(await baselineArm(ctx, s.seeds));
    if (s.arms.includes('label-free-cf'))
      parts.push(await closedFormArms(ctx, plan, s.layers, s.seeds, s.noiseScales));
    if (s.arms.includes('label-free'))
      parts.push(
        await labelFreeArm(ctx, plan, s.seeds, { ...s.labelFree, batchSize: s.batchSize }),
      );
    if (s.arms.includes('label-aug'))
      parts.push(
        await labelAugArms(ctx, plan, s.layers, s.seeds, {
          ...s.labelAug,
          batchSize: s.batchSize,
        }),
      );
  } catch (err) {
    if (!(err instanceof Interrupted)) throw err;
    interrupted = true;
  } finally {
    await ctx.release();
  }
  const all = parts.reduce(
    (a, p) => ({
      arms: [...a.arms, ...p.arms],
      compute: { ...a.compute, ...p.compute },
      curves: [...a.curves, ...p.curves],
      verify: [...a.verify, ...p.verify],
      sweep: [...a.sweep, ...p.sweep],
      spectra: [...a.spectra, ...p.spectra],
    }),
    noArms(),
  );
  const summary = interrupted
    ? { arms: {}, sweep: [] }
    : summarizeStudy(all.arms, all.sweep, {
        seeds: s.seeds,
        corruptions: s.corruptions,
        severities: s.severities,
        resamples: s.resamples,
        bootstrapSeed: s.dataSeed,
      });
  const results: StudyResults = {
    format: 'denoiserep-study',
    version: 1,
    id,
    created: new Date().toISOString(),
    wallSeconds: (performance.now() - t0) / 1000,
    command: opts.command ?? '',
    backbone: {
      ref: backbone.ref,
      preset: backbone.def.name,
      ...(backbone.manifestAcc1 !== undefined ? { manifestAcc1: backbone.manifestAcc1 } : {}),
      sha256: backbone.identity,
    },
    data: {
      source: s.data,
      trainImages: data.train.size,
      momentImages: data.moments.size,
      testImages: data.test.size,
      corruptedImages: data.corruptBase.size,
      queries: data.test.numClasses * s.queriesPerClass,
    },
    settings: s as unknown as Record<string, unknown>,
    seeds: s.seeds,
    corruptions: s.corruptions,
    severities: s.severities,
    noiseScales: s.noiseScales,
    arms: summary.arms,
    compute: all.compute,
    sweep: summary.sweep,
    curves: all.curves,
    spectra: all.spectra,
    verify: all.verify,
    conclusions: [],
  };
  const run = { dir, results, cached: ctx.cached, computed: ctx.computed, interrupted };
  if (interrupted) return run;
  results.conclusions = conclusions(results);
  writeJsonAtomic(join(dir, 'results.json'), results);
  writeFileAtomic(join(dir, 'table.md'), `${studyMarkdown(results)}\n`);
  writeFileAtomic(join(dir, 'report.html'), studyReportHtml(results));
  ctx.log({
    kind: 'done',
    wallSeconds: results.wallSeconds,
    cached: ctx.cached.length,
    computed: ctx.computed.length,
  });
  return run;
}

/** The study's `--json` line: exactly the shape the issue asks for. */
export function studyJson(r: StudyResults): Record<string, unknown> {
  const m = (x: { mean: number; ci: [number, number] | null; perSeed: number[] }) => ({
    mean: x.mean,
    ci: x.ci,
    perSeed: x.perSeed,
  });
  const d = (x: { mean: number; ci: [number, number] | null }) => ({ mean: x.mean, ci: x.ci });
  const c = (x: ArmCompute | null | undefined) =>
    x
      ? {
          backboneSteps: x.backboneSteps,
          denoiserSteps: x.denoiserSteps,
          lrFirst: x.lrFirst,
          lrLast: x.lrLast,
          dataOrderSeed: x.dataOrderSeed,
        }
      : null;
  return {
    seeds: r.seeds,
    arms: Object.fromEntries(
      Object.values(r.arms).map((a) => [
        a.name,
        {
          control: a.control,
          compute: c(r.compute[a.name]?.[0]),
          acc1: m(a.acc1),
          map: m(a.map),
          corruptedAcc1: m(a.corruptedAcc1),
          deltaVsControl: a.deltaVsControl
            ? { acc1: d(a.deltaVsControl.acc1), map: d(a.deltaVsControl.map) }
            : null,
        },
      ]),
    ),
    sweep: r.sweep.map((p) => ({
      noiseScale: p.noiseScale,
      acc1: d(p.acc1),
      corruptedAcc1: d(p.corruptedAcc1),
    })),
    corruptions: r.corruptions,
  };
}
