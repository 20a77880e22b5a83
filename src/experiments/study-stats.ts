/**
 * The statistics of the study: from every model's per-item scores (which test images it
 * classifies right, each retrieval query's AP, which corrupted images it classifies
 * right) to the summary the table, the report and `--json` show. Everything is in
 * percent.
 *
 * Intervals (95%):
 * - A trained arm (its result depends on the seed) with two or more seeds: a Student
 *   t-interval across seeds. It measures training randomness on this fixed test set.
 * - A deterministic arm (the baseline, the closed-form fits), or one seed: a bootstrap over
 *   test images (queries for mAP). It measures test-set sampling. A t-interval across
 *   seeds would have zero width here and call any difference significant.
 * - A difference arm − control: per seed, a paired bootstrap over the same images (and
 *   the exact McNemar test for acc@1); across seeds, as above with the per-seed
 *   differences.
 * An interval that contains 0 reads "no detectable difference".
 */
import { corruptionErrors } from '../eval/robustness.js';
import {
  bootstrapMean,
  mcnemarExact,
  pairedBootstrap,
  tInterval,
  verdict,
  type Verdict,
} from '../eval/statistics.js';
import { DataError } from '../util/errors.js';
import { Rng } from '../util/rng.js';

/** A model's per-item scores on the study's test sets (all models on the same items). */
export interface ModelScores {
  /** 1 where clean test image i is classified right. */
  correct: Uint8Array;
  /** AP of each retrieval query; NaN for a query without a true match. */
  queryAP: Float64Array;
  /** Per corrupted split `<corruption>/<severity>`: 1 where corrupted image i is right. */
  corrupted: Record<string, Uint8Array>;
}

/** How an interval was formed. */
export type CiMethod = 't-across-seeds' | 'bootstrap-images' | 'bootstrap-queries' | 'none';

/** A metric of one model: its mean over seeds, interval and per-seed values. */
export interface MetricSummary {
  mean: number;
  ci: [number, number] | null;
  perSeed: number[];
  ciMethod: CiMethod;
}

/** One seed's difference arm − control. */
export interface SeedDelta {
  seed: number;
  mean: number;
  /** Paired bootstrap over items. */
  ci: [number, number];
  /** Exact McNemar p-value (acc@1 only). */
  mcnemarP?: number;
}

/** A difference arm − control over seeds. */
export interface DeltaSummary {
  mean: number;
  ci: [number, number] | null;
  ciMethod: CiMethod;
  verdict: Verdict;
  perSeed: SeedDelta[];
}

/** One arm as the study ran it. */
export interface ArmInput {
  name: string;
  /** The arm it is compared with (null for the baseline and the controls). */
  control: string | null;
  /** Whether its result depends on the seed (trained arms). */
  seedDependent: boolean;
  /** Scores per seed, in the order of the study's seeds. */
  scores: ModelScores[];
}

/** What the summary says about one arm. */
export interface ArmSummary {
  name: string;
  control: string | null;
  seedDependent: boolean;
  acc1: MetricSummary;
  map: MetricSummary;
  /** Mean accuracy over every corrupted split. */
  corruptedAcc1: MetricSummary;
  /** Accuracy per corruption (mean over its severities). */
  perCorruption: Record<string, MetricSummary>;
  /** Mean corruption error relative to the baseline (100 = as robust as the baseline). */
  mCE: MetricSummary | null;
  deltaVsControl: {
    acc1: DeltaSummary;
    map: DeltaSummary;
    corruptedAcc1: DeltaSummary;
    perCorruption: Record<string, DeltaSummary>;
  } | null;
}

/** Every arm's summary, by name, in the order the arms ran. */
export type StudySummaryArms = Record<string, ArmSummary>;

/** One level of the noise-scale sweep (a deterministic closed-form fit). */
export interface SweepInput {
  noiseScale: number;
  scores: ModelScores;
}

export interface SweepSummary {
  noiseScale: number;
  acc1: MetricSummary;
  map: MetricSummary;
  corruptedAcc1: MetricSummary;
  /** Against the baseline, paired over images. */
  deltaVsBaseline: { acc1: DeltaSummary; corruptedAcc1: DeltaSummary };
}

/** Options of {@link summarizeStudy}. */
export interface SummaryOptions {
  seeds: number[];
  /** Corruption names in report order; splits are `<corruption>/<severity>`. */
  corruptions: string[];
  severities: number[];
  /** Name of the reference arm of mCE and the sweep (default 'baseline'). */
  baseline?: string;
  /** Bootstrap resamples (default 2,000) and seed (default 0). */
  resamples?: number;
  bootstrapSeed?: number;
}

function meanOf(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s / xs.length;
}

/** Per-item scores as percentages (items whose score is NaN are dropped, for AP). */
function asPercent(xs: ArrayLike<number>): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) if (!Number.isNaN(xs[i]!)) out.push(100 * xs[i]!);
  return Float64Array.from(out);
}

/** Per-image mean correctness over a set of corrupted splits. */
export function corruptedImageScores(s: ModelScores, splits: readonly string[]): Float64Array {
  if (splits.length === 0) throw new DataError('no corrupted split to average');
  const first = s.corrupted[splits[0]!];
  if (!first) throw new DataError(`no scores for corrupted split '${splits[0]}'`);
  const out = new Float64Array(first.length);
  for (const k of splits) {
    const c = s.corrupted[k];
    if (!c || c.length !== out.length) throw new DataError(`no scores for corrupted split '${k}'`);
    for (let i = 0; i < c.length; i++) out[i]! += c[i]! / splits.length;
  }
  return out;
}

/** What one metric reads from a model's scores: per-item values (NaN = not an item). */
type ItemsOf = (s: ModelScores) => ArrayLike<number>;

interface MetricSpec {
  items: ItemsOf;
  /** Bootstrap over images or queries. */
  unit: 'bootstrap-images' | 'bootstrap-queries';
}

/**
 * The study's statistics (see the module comment).
 * @param arms - every arm, the baseline and the controls included, scored per seed
 * @param sweep - the noise-scale sweep's models (may be empty)
 * @param opts - seeds, corruptions, severities, bootstrap settings
 */
export function summarizeStudy(
  arms: readonly ArmInput[],
  sweep: readonly SweepInput[],
  opts: SummaryOptions,
): { arms: StudySummaryArms; sweep: SweepSummary[] } {
  const { seeds } = opts;
  const resamples = opts.resamples ?? 2000;
  const bootSeed = opts.bootstrapSeed ?? 0;
  const splits = opts.corruptions.flatMap((c) => opts.severities.map((s) => `${c}/${s}`));
  const byName = new Map(arms.map((a) => [a.name, a]));
  for (const a of arms) {
    if (a.scores.length !== seeds.length)
      throw new DataError(
        `arm '${a.name}' has ${a.scores.length} seeds of scores, expected ${seeds.length}`,
      );
    if (a.control !== null && !byName.has(a.control))
      throw new DataError(`arm '${a.name}' is compared with '${a.control}', which did not run`);
  }
  // Each bootstrap gets its own stream, named by what it resamples.
  const bseed = (label: string) => new Rng(bootSeed).fork(label).nextUint32();

  const specs = {
    acc1: { items: (s: ModelScores) => s.correct, unit: 'bootstrap-images' },
    map: { items: (s: ModelScores) => s.queryAP, unit: 'bootstrap-queries' },
    corruptedAcc1: {
      items: (s: ModelScores) => corruptedImageScores(s, splits),
      unit: 'bootstrap-images',
    },
  } satisfies Record<string, MetricSpec>;
  const corruptionSpec = (c: string): MetricSpec => ({
    items: (s) =>
      corruptedImageScores(
        s,
        opts.severities.map((v) => `${c}/${v}`),
      ),
    unit: 'bootstrap-images',
  });

  const metric = (
    scores: ModelScores[],
    dependent: boolean,
    spec: MetricSpec,
    label: string,
  ): MetricSummary => {
    const perSeed = scores.map((s) => meanOf(asPercent(spec.items(s))));
    if (dependent && perSeed.length >= 2) {
      const t = tInterval(perSeed);
      return { mean: t.mean, ci: t.ci, perSeed, ciMethod: 't-across-seeds' };
    }
    const b = bootstrapMean(asPercent(spec.items(scores[0]!)), { resamples, seed: bseed(label) });
    return { mean: meanOf(perSeed), ci: b.ci, perSeed, ciMethod: spec.unit };
  };

  const delta = (
    a: ModelScores[],
    b: ModelScores[],
    dependent: boolean,
    spec: MetricSpec,
    label: string,
    mcnemar: boolean,
  ): DeltaSummary => {
    const perSeed: SeedDelta[] = seeds.map((seed, k) => {
      const x = spec.items(a[k]!);
      const y = spec.items(b[k]!);
      // Queries without a true match have NaN AP in both models (same split): drop them.
      const keep: number[] = [];
      for (let i = 0; i < x.length; i++)
        if (!Number.isNaN(x[i]!) && !Number.isNaN(y[i]!)) keep.push(i);
      const xs = Float64Array.from(keep, (i) => 100 * x[i]!);
      const ys = Float64Array.from(keep, (i) => 100 * y[i]!);
      const d = pairedBootstrap(xs, ys, { resamples, seed: bseed(`${label}/${seed}`) });
      return {
        seed,
        mean: d.mean,
        ci: d.ci,
        ...(mcnemar ? { mcnemarP: mcnemarExact(x, y).pValue } : {}),
      };
    });
    const means = perSeed.map((d) => d.mean);
    if (dependent && means.length >= 2) {
      const t = tInterval(means);
      const r = { mean: t.mean, ci: t.ci, ciMethod: 't-across-seeds' as const, perSeed };
      return { ...r, verdict: verdict(r) };
    }
    const r = { mean: meanOf(means), ci: perSeed[0]!.ci, ciMethod: spec.unit, perSeed };
    return { ...r, verdict: verdict(r) };
  };

  const baseName = opts.baseline ?? 'baseline';
  const base = byName.get(baseName);
  const errorsOf = (s: ModelScores) =>
    Object.fromEntries(
      opts.corruptions.map((c) => [
        c,
        opts.severities.map((v) => 1 - meanOf(s.corrupted[`${c}/${v}`]!)),
      ]),
    );

  const out: Record<string, ArmSummary> = {};
  for (const a of arms) {
    const perCorruption = Object.fromEntries(
      opts.corruptions.map((c) => [
        c,
        metric(a.scores, a.seedDependent, corruptionSpec(c), `${a.name}/${c}`),
      ]),
    );
    let mCE: MetricSummary | null = null;
    if (base && splits.length) {
      const perSeed = a.scores.map(
        (s, k) => 100 * corruptionErrors(errorsOf(s), errorsOf(base.scores[k]!)).mCE,
      );
      const dep = a.seedDependent || base.seedDependent;
      const t = dep && perSeed.length >= 2 ? tInterval(perSeed) : null;
      mCE = {
        mean: meanOf(perSeed),
        ci: t?.ci ?? null,
        perSeed,
        ciMethod: t ? 't-across-seeds' : 'none',
      };
    }
    let deltaVsControl: ArmSummary['deltaVsControl'] = null;
    if (a.control !== null) {
      const c = byName.get(a.control)!;
      const dep = a.seedDependent || c.seedDependent;
      const label = `${a.name}-vs-${c.name}`;
      deltaVsControl = {
        acc1: delta(a.scores, c.scores, dep, specs.acc1, `${label}/acc1`, true),
        map: delta(a.scores, c.scores, dep, specs.map, `${label}/map`, false),
        corruptedAcc1: delta(
          a.scores,
          c.scores,
          dep,
          specs.corruptedAcc1,
          `${label}/corrupted`,
          false,
        ),
        perCorruption: Object.fromEntries(
          opts.corruptions.map((cn) => [
            cn,
            delta(a.scores, c.scores, dep, corruptionSpec(cn), `${label}/${cn}`, false),
          ]),
        ),
      };
    }
    out[a.name] = {
      name: a.name,
      control: a.control,
      seedDependent: a.seedDependent,
      acc1: metric(a.scores, a.seedDependent, specs.acc1, `${a.name}/acc1`),
      map: metric(a.scores, a.seedDependent, specs.map, `${a.name}/map`),
      corruptedAcc1: metric(a.scores, a.seedDependent, specs.corruptedAcc1, `${a.name}/corrupted`),
      perCorruption,
      mCE,
      deltaVsControl,
    };
  }

  const sweepOut = sweep.map((p): SweepSummary => {
    const one = [p.scores];
    const label = `sweep-${p.noiseScale}`;
    if (!base) throw new DataError(`the sweep is compared with '${baseName}', which did not run`);
    // The sweep and the baseline are deterministic: compare them on the first seed's items.
    const b0 = [base.scores[0]!];
    const deltaOne = (spec: MetricSpec, l: string, mcn: boolean): DeltaSummary => {
      const x = spec.items(p.scores);
      const y = spec.items(b0[0]!);
      const d = pairedBootstrap(asPercent(x), asPercent(y), { resamples, seed: bseed(l) });
      const r = {
        mean: d.mean,
        ci: d.ci,
        ciMethod: spec.unit,
        perSeed: [
          {
            seed: seeds[0]!,
            mean: d.mean,
            ci: d.ci,
            ...(mcn ? { mcnemarP: mcnemarExact(x, y).pValue } : {}),
          },
        ],
      };
      return { ...r, verdict: verdict(r) };
    };
    return {
      noiseScale: p.noiseScale,
      acc1: metric(one, false, specs.acc1, `${label}/acc1`),
      map: metric(one, false, specs.map, `${label}/map`),
      corruptedAcc1: metric(one, false, specs.corruptedAcc1, `${label}/corrupted`),
      deltaVsBaseline: {
        acc1: deltaOne(specs.acc1, `${label}/delta-acc1`, true),
        corruptedAcc1: deltaOne(specs.corruptedAcc1, `${label}/delta-corrupted`, false),
      },
    };
  });
  return { arms: out, sweep: sweepOut };
}

/** Packs 0/1 scores into a string of '0'/'1' (compact in JSON caches). */
export function packBits(x: Uint8Array): string {
  let s = '';
  for (let i = 0; i < x.length; i++) s += x[i] ? '1' : '0';
  return s;
}

/** Inverse of {@link packBits}. */
export function unpackBits(s: string, what = 'scores'): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch !== 48 && ch !== 49) throw new DataError(`${what}: character ${i} is not 0 or 1`);
    out[i] = ch - 48;
  }
  return out;
}

/** Model scores as JSON (cache files). */
export function scoresToJson(s: ModelScores): Record<string, unknown> {
  return {
    correct: packBits(s.correct),
    queryAP: Array.from(s.queryAP, (v) => (Number.isNaN(v) ? null : v)),
    corrupted: Object.fromEntries(Object.entries(s.corrupted).map(([k, v]) => [k, packBits(v)])),
  };
}

/** Inverse of {@link scoresToJson}. */
export function scoresFromJson(j: unknown, what = 'scores'): ModelScores {
  const o = j as { correct?: unknown; queryAP?: unknown; corrupted?: unknown };
  if (
    typeof o?.correct !== 'string' ||
    !Array.isArray(o.queryAP) ||
    typeof o.corrupted !== 'object' ||
    o.corrupted === null
  )
    throw new DataError(`${what}: not a scores record`);
  return {
    correct: unpackBits(o.correct, what),
    queryAP: Float64Array.from(o.queryAP as (number | null)[], (v) => (v === null ? NaN : v)),
    corrupted: Object.fromEntries(
      Object.entries(o.corrupted as Record<string, string>).map(([k, v]) => [
        k,
        unpackBits(v, `${what} ${k}`),
      ]),
    ),
  };
}
