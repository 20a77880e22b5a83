import type { Command } from 'commander';
import { fit, type FitOptions, type FitReport } from '../denoise/api/fit.js';
import { describeCopy } from '../denoise/fuse.js';
import type { ProgressEvent } from '../denoise/pipeline.js';
import { emit, floatArg, intArg, listArg, withCommon } from './common.js';
import { collect } from './inputs.js';
import { type Progress, startProgress } from './progress.js';

/** The flags as commander parses them. */
interface FitFlags {
  images?: string[];
  data?: string;
  out?: string;
  size?: number[];
  channels?: number;
  mean?: number[];
  std?: number[];
  layers: string;
  timesteps: string;
  untie: boolean;
  noiseScale: number;
  mode: string;
  epochs: number;
  batchSize: number;
  lr: number;
  ridge: number;
  workers?: number;
  shard?: string;
  statsOut?: string;
  fromStats?: string;
  report?: string;
  denoisersOut?: string;
  skipCorrupt: boolean;
  tolerance: number;
  json: boolean;
  seed: number;
  threads: number;
}

/** A progress bar over the statistics pass (stderr, interactive terminals only). */
function statisticsBar(quiet: boolean): { onProgress: (e: ProgressEvent) => void; stop(): void } {
  let bar: Progress | undefined;
  let stopped = false;
  const stop = () => {
    if (bar && !stopped) bar.stop();
    stopped = true;
  };
  return {
    onProgress(e) {
      if (e.stage !== 'statistics' || stopped) return;
      bar ??= startProgress('statistics', e.total, quiet);
      bar.update(e.done);
      if (e.done >= e.total) stop();
    },
    stop,
  };
}

/** The flags as {@link fit}'s options. */
function fitOptions(o: FitFlags, onProgress: (e: ProgressEvent) => void): FitOptions {
  return {
    images: o.images,
    data: o.data,
    out: o.out,
    size: o.size,
    channels: o.channels,
    mean: o.mean,
    std: o.std,
    layers: o.layers,
    timesteps: o.timesteps as FitOptions['timesteps'],
    untie: o.untie,
    noiseScale: o.noiseScale,
    mode: o.mode as FitOptions['mode'],
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    ridge: o.ridge,
    workers: o.workers,
    fromStats: o.fromStats?.split(','),
    report: o.report,
    denoisersOut: o.denoisersOut,
    skipCorrupt: o.skipCorrupt,
    tolerance: o.tolerance,
    seed: o.seed,
    threads: o.threads,
    onProgress,
    onWarning: (m) => process.stderr.write(`denoiserep: ${m}\n`),
  };
}

/** The text `fit` prints for a fused model. */
function fitText(r: FitReport): string {
  return [
    `fitted ${r.layers.length} layers of ${r.model} (${r.mode}${r.images !== undefined ? `, ${r.images} images` : ''}${r.skipped ? `, ${r.skipped} corrupt skipped` : ''})`,
    ...r.layers.map(
      (l) =>
        `  t=${String(l.t).padStart(3)} ${l.layer.padEnd(28)} weight change ${l.relativeWeightChange.toExponential(2)}${l.summary ? `  σ ∈ [${l.summary.min.toFixed(5)}, ${l.summary.max.toFixed(5)}]` : ''}`,
    ),
    ...r.skippedLayers.map((s) => `  skipped ${s.name}: ${s.reason}`),
    ...r.copies.map((c) => `  ${describeCopy(c)}`),
    `wrote ${r.out}`,
  ].join('\n');
}

/**
 * `denoiserep fit`: label-free DenoiseRep on any ONNX model and a folder of images, a thin
 * wrapper over {@link fit}. (Longer than 80 lines only because it declares the command's
 * flags; the action itself parses, calls and prints.)
 */
export function fitCommand(program: Command): void {
  withCommon(
    program
      .command('fit')
      .description(
        'label-free DenoiseRep on an ONNX model with a folder of unlabeled images; writes a fused model of identical topology',
      )
      .argument('<model>', 'ONNX model (NCHW float input, opset 13-17, dynamic batch allowed)')
      .option(
        '--images <dir>',
        'folder of unlabeled .png/.jpg images; repeat (or add --data) to merge several sets',
        collect,
      )
      .option('--out <file>', 'fused model to write (never the input file)')
      .option(
        '--data <src>',
        'Fashion-MNIST training images: embedded, fashion-mnist or an IDX folder',
      )
      .option('--size <h,w>', 'input size (default: the model input size)', listArg('--size', 2))
      .option(
        '--channels <n>',
        'image channels, 1 or 3 (default: from the model)',
        intArg('--channels'),
      )
      .option(
        '--mean <m>',
        'per-channel mean subtracted after scaling pixels to [0,1]',
        listArg('--mean', 3),
      )
      .option('--std <s>', 'per-channel std divided after the mean', listArg('--std', 3))
      .option('--layers <filter>', 'layers: all, mlp, linear, conv, or globs', 'all')
      .option('--timesteps <mode>', 'paper (N..1), public-code, or linear:<first>:<last>', 'paper')
      .option(
        '--noise-scale <k>',
        "multiple of the paper's betas: the noise level the denoisers remove",
        floatArg('--noise-scale'),
        1,
      )
      .option(
        '--untie',
        'also fit layers with tied weights, each fused into its own copy (more parameters)',
        false,
      )
      .option(
        '--mode <mode>',
        "closed-form (default) or sgd (the paper's L1+MSE training)",
        'closed-form',
      )
      .option('--epochs <n>', 'sgd mode: epochs', intArg('--epochs'), 5)
      .option('--batch-size <n>', 'images per batch', intArg('--batch-size'), 32)
      .option('--lr <x>', 'sgd mode: AdamW learning rate', floatArg('--lr'), 1e-3)
      .option('--denoisers-out <file>', 'also write the fitted denoisers (for fuse/verify)')
      .option('--ridge <x>', 'closed form: extra ridge on the diagonal', floatArg('--ridge'), 0)
      .option(
        '--workers <n>',
        'closed form: worker threads fitting layers in parallel, sharing --threads (default 2 with 2 or more threads; 0: none)',
        intArg('--workers'),
      )
      .option(
        '--shard <i/n>',
        'closed form: use every n-th image from i and write statistics (--stats-out) instead of a model',
      )
      .option('--stats-out <file>', 'where --shard writes its statistics')
      .option(
        '--from-stats <files>',
        'closed form: fit from the comma-separated statistics files of all shards (summed); --images then only verifies',
      )
      .option(
        '--report <file>',
        'write per-layer diagnostics as JSON (and the spectra as SVG and PNG beside it)',
      )
      .option('--skip-corrupt', 'skip images that fail to decode (and count them)', false)
      .option(
        '--tolerance <x>',
        'verification tolerance (relative)',
        floatArg('--tolerance'),
        1e-4,
      ),
  ).action(async (arg: string, o: FitFlags) => {
    const bar = statisticsBar(o.json);
    const options = fitOptions(o, bar.onProgress);
    try {
      if (o.shard !== undefined) {
        const r = await fit(arg, { ...options, shard: o.shard, statsOut: o.statsOut ?? '' });
        const { statsOut, shard, images, skipped } = r;
        emit(
          o.json,
          { statsOut, shard, images, skipped },
          () => `wrote statistics of shard ${shard} to ${statsOut}`,
        );
        return;
      }
      const r = await fit(arg, options);
      const { model, out, mode, images, skipped, verification } = r;
      const { skippedLayers, copies, addedParameters, untiedParameters } = r;
      const layers = r.layers.length;
      emit(
        o.json,
        {
          model,
          out,
          mode,
          layers,
          images,
          skipped,
          skippedLayers,
          copies,
          addedParameters,
          untiedParameters,
          verification,
        },
        () => fitText(r),
      );
    } finally {
      bar.stop();
    }
  });
}
