// The one-call study: `denoiserep study` as a function taking the command's options
// (camel-cased, numbers and arrays where the command line takes strings) and returning the
// run's results and the summary `--json` prints. The CLI action is a thin wrapper of it.
import { CORRUPTION_NAMES, type CorruptionName, parseCorruptions } from '../data/corruptions.js';
import { checkRanged, checkString, numberList } from '../denoise/api/options.js';
import { UsageError } from '../util/errors.js';
import type { StudyResults } from './study-report.js';
import { runStudy, STUDY_ARMS, type StudyArm, studyJson, type StudySettings } from './study.js';

/** Options of {@link study}: the flags of `denoiserep study`. */
export interface StudyOptions {
  /** `zoo:<preset>` or a pretrain output folder (default: the shipped `zoo:vit-tiny-fmnist`). */
  backbone?: string;
  /** `'embedded'`, `'fashion-mnist'` or an IDX folder (default: fashion-mnist when installed). */
  data?: string;
  /** How many seeds: `seed`, `seed + 1`, ... (default 3; 1 with `quick`). */
  seeds?: number;
  /** The first seed (default 0). */
  seed?: number;
  /** ONNX Runtime intra-op threads (default: every core). */
  threads?: number;
  /** Arms to run; their controls are added (default: all of {@link STUDY_ARMS}). */
  arms?: StudyArm[];
  /** Layers to convert: `all` (default), `mlp`, `linear`, `conv`, or globs. */
  layers?: string;
  /** Corruptions of the robustness test set, or `'all'` (default). */
  corruptions?: CorruptionName[] | 'all';
  /** Severities 1 to 5 (default: all five; 3 with `quick`). */
  severities?: number[];
  /** Multiples of the paper's betas for the closed-form sweep. */
  noiseScales?: number[];
  /** Training images of the trained arms (0: all). */
  trainImages?: number;
  /** Of the training images, how many give the closed form's input moments (0: all). */
  momentImages?: number;
  /** Clean test images (0: all). */
  testImages?: number;
  /** Images per corrupted split. */
  corruptedImages?: number;
  /** Retrieval queries per class (classes as identities). */
  queriesPerClass?: number;
  /** A small run of every arm, control, corruption and 3 noise levels. */
  quick?: boolean;
  /** The runs folder (default `runs`). */
  out?: string;
  /** The study's folder name (default: a hash of the settings, so the same call resumes). */
  id?: string;
  /** Recorded in results.json as the command that ran (default: this call, as JSON). */
  command?: string;
  /** Called with a line of text as each unit (trained model, moments, scores) starts or ends. */
  onProgress?: (message: string) => void;
}

/** What {@link study} returns. */
export interface StudyReport {
  /** The study's folder: results.json, table.md, report.html and the cached units. */
  dir: string;
  /** Everything measured, per seed and arm. */
  results: StudyResults;
  /** The object `denoiserep study --json` prints: means, intervals, deltas against controls. */
  summary: Record<string, unknown>;
  /** Units loaded from the cache, and units computed by this call. */
  cached: string[];
  computed: string[];
}

const NUMBERS = [
  'trainImages',
  'momentImages',
  'testImages',
  'corruptedImages',
  'queriesPerClass',
] as const;

/** Checks the options (UsageErrors naming the flag) and turns them into study settings. */
export function studyOverrides(o: StudyOptions): Partial<StudySettings> {
  for (const k of ['backbone', 'data', 'layers', 'out', 'id', 'command'] as const)
    checkString(k, o[k]);
  for (const k of ['seeds', 'seed', 'threads', ...NUMBERS] as const) checkRanged(k, o[k]);
  const s: Partial<StudySettings> = {};
  if (o.backbone !== undefined) s.backbone = o.backbone;
  if (o.data !== undefined) s.data = o.data;
  if (o.layers !== undefined) s.layers = o.layers;
  const first = o.seed ?? 0;
  if (o.seeds !== undefined) s.seeds = Array.from({ length: o.seeds }, (_, i) => first + i);
  else if (first !== 0) s.seeds = [first];
  if (o.arms !== undefined) {
    const arms: unknown[] = Array.isArray(o.arms) ? o.arms : [o.arms];
    for (const a of arms)
      if (!(STUDY_ARMS as readonly unknown[]).includes(a))
        throw new UsageError(`--arms: unknown arm '${String(a)}' (arms: ${STUDY_ARMS.join(', ')})`);
    if (arms.length === 0) throw new UsageError('--arms: no arm given');
    s.arms = [...new Set(arms)] as StudyArm[];
  }
  if (o.corruptions !== undefined) {
    const names: unknown[] = Array.isArray(o.corruptions) ? o.corruptions : [o.corruptions];
    if (!names.every((n): n is string => typeof n === 'string'))
      throw new UsageError(`--corruptions must name corruptions (${CORRUPTION_NAMES.join(', ')})`);
    s.corruptions = parseCorruptions(names);
  }
  const severities = numberList('severities', o.severities, 5);
  if (severities) s.severities = severities;
  const scales = numberList('noiseScales', o.noiseScales, 100);
  if (scales) s.noiseScales = scales;
  for (const k of NUMBERS) if (o[k] !== undefined) s[k] = o[k];
  return s;
}

/**
 * Runs (or resumes) the study `denoiserep study` runs: every arm against its compute-matched
 * control, on clean and corrupted test images, with paired statistics and the noise-scale
 * sweep; writes `<out>/<id>/results.json`, `table.md` and `report.html`.
 * @param options - the command's options ({@link StudyOptions})
 * @returns the study's folder, results and `--json` summary ({@link StudyReport})
 * @throws UsageError for a bad option (naming its flag); DataError for missing data or a
 *   zoo entry whose weights do not match their manifest
 * @example
 * const { summary } = await study({ backbone: 'zoo:resnet-tiny-fmnist', seeds: 3 });
 */
export async function study(options: StudyOptions = {}): Promise<StudyReport> {
  const settings = studyOverrides(options);
  const run = await runStudy({
    quick: options.quick ?? false,
    settings,
    root: options.out ?? 'runs',
    ...(options.id !== undefined ? { id: options.id } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    command: options.command ?? `study(${JSON.stringify({ ...options, onProgress: undefined })})`,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return {
    dir: run.dir,
    results: run.results,
    summary: studyJson(run.results),
    cached: run.cached,
    computed: run.computed,
  };
}
