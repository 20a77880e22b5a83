/**
 * What `denoiserep probe` runs: one probe of one feature source (a U-Net block at a step
 * t, raw pixels, or a backbone's penultimate features), or the (t, block) sweep with its
 * heatmap. Sweep results are written next to the model (`probe-sweep.json`), and a later
 * probe of that model without --t/--block uses the sweep's best cell.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ImageDataset } from '../data/dataset.js';
import { FeatureExtractor, type Pooling } from '../diffusion/features.js';
import type { LoadedUNet } from '../diffusion/load.js';
import { ddpmSchedule } from '../diffusion/schedule.js';
import type { Model } from '../onnx/ir.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.js';
import { DataError, UsageError } from '../util/errors.js';
import { svgToPng } from '../denoise/diagnostics.js';
import { heatmapSvg } from './heatmap.js';
import {
  backboneFeatures,
  pixelFeatures,
  type ProbeConfig,
  type ProbeResult,
  probeSweep,
  type SweepCell,
  trainProbe,
} from './probe.js';

/** File names of a sweep's results. */
export const SWEEP_FILES = {
  json: 'probe-sweep.json',
  svg: 'probe-sweep.svg',
  png: 'probe-sweep.png',
};

/** The noise steps of the sweep (DDAE's range, t = 0 a clean input). */
export const SWEEP_TS = [0, 10, 25, 50, 100, 200, 400];

/** (t, block) used when neither the flags nor a sweep file choose one. */
export const FALLBACK_CELL = { t: 10, block: 'mid' } as const;

/** A feature source: a trained U-Net, raw pixels, or a backbone with a `feature` output. */
export type ProbeSource =
  | { kind: 'unet'; unet: LoadedUNet; path: string }
  | { kind: 'pixels' }
  | { kind: 'backbone'; model: Model; path: string };

/** What one probe reports. */
export interface ProbeReport {
  /** Noise step (null for pixels and backbones). */
  t: number | null;
  /** U-Net block, or 'pixels' / 'backbone'. */
  block: string;
  /** acc@1 in percent. */
  acc1: number;
  head: 'linear' | 'attention';
  /** Where (t, block) came from: flags, a zoo entry's manifest, the sweep file, or the fallback. */
  chosenBy?: CellChoice;
  result: ProbeResult;
}

/** The folder a model's sweep results live in (the run folder, or the file's folder). */
export function sweepDir(path: string): string {
  return existsSync(path) && statSync(path).isDirectory() ? path : dirname(path);
}

/** Where a probe's (t, block) came from. */
export type CellChoice = 'flags' | 'manifest' | 'sweep' | 'fallback';

/**
 * The (t, block) to probe: the flags; else, for a zoo entry, its manifest's cell (the
 * best of the sweep it shipped with); else the best cell of `probe-sweep.json` next to
 * the model; else {@link FALLBACK_CELL}.
 * @param shipped - a zoo entry's `probe` cell
 */
export function chooseCell(
  path: string,
  t: number | undefined,
  block: string | undefined,
  shipped?: { t: number; block: string },
): { t: number; block: string; chosenBy: CellChoice } {
  if (t !== undefined && block !== undefined) return { t, block, chosenBy: 'flags' };
  if (shipped) return { t: t ?? shipped.t, block: block ?? shipped.block, chosenBy: 'manifest' };
  const file = join(sweepDir(path), SWEEP_FILES.json);
  let best: SweepCell | undefined;
  if (existsSync(file)) {
    try {
      best = (JSON.parse(readFileSync(file, 'utf8')) as { best?: SweepCell }).best;
    } catch (err) {
      throw new DataError(`${file}: not valid JSON`, { cause: err });
    }
  }
  const from = best ?? FALLBACK_CELL;
  return { t: t ?? from.t, block: block ?? from.block, chosenBy: best ? 'sweep' : 'fallback' };
}

/**
 * Trains and scores one probe.
 * @param opts.head - 'linear' (mean-pooled features) or 'attention' (a `grid` x `grid` map)
 */
export async function runProbe(opts: {
  source: ProbeSource;
  train: ImageDataset;
  test: ImageDataset;
  head: 'linear' | 'attention';
  t?: number;
  block?: string;
  grid?: number;
  heads?: number;
  config: ProbeConfig;
  onStage?: (what: string) => void;
}): Promise<ProbeReport> {
  const { source, train, test, config } = opts;
  const lab = (d: ImageDataset) => ({ labels: d.labels, numClasses: d.numClasses });
  if (source.kind !== 'unet') {
    if (opts.head !== 'linear') throw new UsageError(`--head attention needs a U-Net's blocks`);
    opts.onStage?.(`${source.kind} features`);
    const f = (d: ImageDataset) =>
      source.kind === 'pixels'
        ? pixelFeatures(d)
        : backboneFeatures(source.model, d, config.threads);
    const result = await trainProbe({
      train: { features: await f(train), ...lab(train) },
      test: { features: await f(test), ...lab(test) },
      head: 'linear',
      config,
    });
    return { t: null, block: source.kind, acc1: 100 * result.acc1, head: 'linear', result };
  }
  const cell = chooseCell(source.path, opts.t, opts.block, source.unet.probeCell);
  const pooling: Pooling = opts.head === 'linear' ? 'mean' : { grid: opts.grid ?? 4 };
  const { def, values } = source.unet;
  const fx = await FeatureExtractor.create(def, values, [cell.block], pooling, ddpmSchedule(), {
    threads: config.threads,
  });
  let tr;
  let te;
  try {
    opts.onStage?.(`features of ${cell.block} at t=${cell.t}`);
    tr = (await fx.extract(train, cell.t, { seed: config.seed, label: 'train' })).get(cell.block)!;
    te = (await fx.extract(test, cell.t, { seed: config.seed, label: 'test' })).get(cell.block)!;
  } finally {
    await fx.release();
  }
  opts.onStage?.(`${opts.head} probe`);
  const result = await trainProbe({
    train: { features: tr, ...lab(train) },
    test: { features: te, ...lab(test) },
    head: opts.head,
    heads: opts.heads,
    config,
  });
  return { ...cell, acc1: 100 * result.acc1, head: opts.head, result };
}

/**
 * The (t, block) sweep of linear probes; writes `probe-sweep.json` (acc1 in percent),
 * `.svg` and `.png` to `outDir`. Returns acc1 in [0, 1].
 */
export async function runSweep(opts: {
  unet: LoadedUNet;
  train: ImageDataset;
  test: ImageDataset;
  ts: number[];
  blocks: string[];
  config: ProbeConfig;
  outDir: string;
  onCell?: (c: SweepCell) => void;
  onStage?: (what: string) => void;
}): Promise<{ cells: SweepCell[]; best: SweepCell; files: string[] }> {
  const t0 = Date.now();
  const { cells, best } = await probeSweep({
    def: opts.unet.def,
    values: opts.unet.values,
    schedule: ddpmSchedule(),
    train: opts.train,
    test: opts.test,
    ts: opts.ts,
    blocks: opts.blocks,
    config: opts.config,
    onCell: opts.onCell,
    onStage: opts.onStage,
  });
  const svg = heatmapSvg(cells, { blocks: opts.unet.def.blocks });
  const percent = (c: SweepCell) => ({ ...c, acc1: 100 * c.acc1 });
  mkdirSync(opts.outDir, { recursive: true });
  const files = Object.values(SWEEP_FILES).map((f) => join(opts.outDir, f));
  writeJsonAtomic(files[0]!, {
    model: opts.unet.source,
    train: opts.train.name,
    trainImages: opts.train.size,
    test: opts.test.name,
    testImages: opts.test.size,
    config: opts.config,
    seconds: (Date.now() - t0) / 1000,
    cells: cells.map(percent),
    best: percent(best),
  });
  writeFileAtomic(files[1]!, svg);
  writeFileAtomic(files[2]!, await svgToPng(svg));
  return { cells, best, files };
}
