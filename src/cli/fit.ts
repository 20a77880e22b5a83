import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { feedBatches, type ImageDataset, subset } from '../data/dataset.js';
import { writeDenoisers } from '../denoise/denoiser-file.js';
import { diagnoseFusion, spectraSvg, svgToPng } from '../denoise/diagnostics.js';
import {
  collectMoments,
  fitClosedForm,
  mergeMoments,
  readMoments,
  writeMoments,
} from '../denoise/fit.js';
import { fuseModel } from '../denoise/fuse.js';
import {
  type ConversionPlan,
  initDenoisers,
  planConversion,
  zeroDenoisers,
} from '../denoise/plan.js';
import type { TimestepMode } from '../denoise/schedule.js';
import { measureDenoisingLoss, type Preprocess, trainLabelFree } from '../denoise/train.js';
import { verifyFusion } from '../denoise/verify.js';
import { DataError, UsageError } from '../util/errors.js';
import { writeModel } from '../onnx/serialize.js';
import type { Tensor } from '../onnx/tensor.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.js';
import {
  emit,
  parseFloatArg,
  parseIntArg,
  parseListArg,
  parseShard,
  withCommon,
} from './common.js';
import { collect, type ImageInputOptions, imageInput, loadInputImages } from './inputs.js';
import { loadModelArg } from './load-model.js';
import { samePath } from './paths.js';
import { startProgress } from './progress.js';

interface FitOptions extends ImageInputOptions {
  images?: string[];
  out?: string;
  size?: number[];
  channels?: number;
  mean?: number[];
  std?: number[];
  layers: string;
  timesteps: string;
  mode: string;
  epochs: number;
  batchSize: number;
  lr: number;
  ridge: number;
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

/** `denoiserep fit`: label-free DenoiseRep on any ONNX model and a folder of images. */
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
      .option('--size <h,w>', 'input size (default: the model input size)', parseListArg('--size'))
      .option(
        '--channels <n>',
        'image channels, 1 or 3 (default: from the model)',
        parseIntArg('--channels', 1),
      )
      .option(
        '--mean <m>',
        'per-channel mean subtracted after scaling pixels to [0,1]',
        parseListArg('--mean'),
      )
      .option('--std <s>', 'per-channel std divided after the mean', parseListArg('--std'))
      .option('--layers <filter>', 'layers: all, mlp, linear, conv, or globs', 'all')
      .option('--timesteps <mode>', 'paper (N..1) or public-code', 'paper')
      .option(
        '--mode <mode>',
        "closed-form (default) or sgd (the paper's L1+MSE training)",
        'closed-form',
      )
      .option('--epochs <n>', 'sgd mode: epochs', parseIntArg('--epochs', 1), 5)
      .option('--batch-size <n>', 'images per batch', parseIntArg('--batch-size', 1), 32)
      .option('--lr <x>', 'sgd mode: AdamW learning rate', parseFloatArg('--lr'), 1e-3)
      .option('--denoisers-out <file>', 'also write the fitted denoisers (for fuse/verify)')
      .option(
        '--ridge <x>',
        'closed form: extra ridge on the diagonal',
        parseFloatArg('--ridge'),
        0,
      )
      .option(
        '--shard <i/n>',
        'closed form: use every n-th image from i and write statistics (--stats-out) instead of a model',
      )
      .option('--stats-out <file>', 'where --shard writes its statistics')
      .option(
        '--from-stats <files>',
        'closed form: fit from comma-separated statistics files (summed) instead of images',
      )
      .option(
        '--report <file>',
        'write per-layer diagnostics as JSON (and the spectra as SVG and PNG beside it)',
      )
      .option('--skip-corrupt', 'skip images that fail to decode (and count them)', false)
      .option(
        '--tolerance <x>',
        'verification tolerance (relative)',
        parseFloatArg('--tolerance'),
        1e-4,
      ),
  ).action(async (arg: string, o: FitOptions) => {
    const { model, source } = await loadModelArg(arg, o.seed);
    if (o.mode !== 'closed-form' && o.mode !== 'sgd')
      throw new UsageError(`--mode must be closed-form or sgd, got '${o.mode}'`);
    const plan: ConversionPlan = planConversion(model.graph, {
      filter: o.layers,
      timesteps: o.timesteps as TimestepMode,
      source,
    });
    const input = imageInput(model, source);
    const shard = o.shard ? parseShard(o.shard) : undefined;
    if (shard && !o.statsOut) throw new UsageError('--shard needs --stats-out <file>');
    if (!shard && !o.out) throw new UsageError('--out <file> is required');
    if (o.out && samePath(arg, o.out))
      throw new UsageError(`--out ${o.out} is the input model; refusing to overwrite it`);
    if (o.fromStats && o.mode !== 'closed-form')
      throw new UsageError('--from-stats works with --mode closed-form only');

    let data: ImageDataset | undefined;
    let skipped = 0;
    let prep: Preprocess | undefined;
    if (!o.fromStats) {
      if (!o.images && !o.data)
        throw new UsageError('--images <dir> or --data <src> is required (or --from-stats)');
      ({ data, skipped, prep } = await loadInputImages(model, source, o, 'train'));
    }

    let values: Map<string, Tensor>;
    let fitReport: unknown;
    if (o.mode === 'closed-form') {
      let stats: Awaited<ReturnType<typeof collectMoments>>;
      if (o.fromStats) {
        const files = o.fromStats.split(',').map((s) => s.trim());
        stats = mergeMoments(files.map((f) => ({ source: f, ...readMoments(f) })));
        for (const p of plan.layers) {
          if (!stats.has(p.layer.name))
            throw new DataError(
              `statistics files lack layer '${p.layer.name}' (same model and --layers?)`,
            );
        }
      } else {
        const bar = startProgress('statistics', data!.size, o.json);
        let done = 0;
        stats = await collectMoments(
          model,
          plan,
          feedBatches(data!, input.name, o.batchSize, prep, shard),
          {
            session: { threads: o.threads, source },
            onBatch: (n) => bar.update((done += n)),
          },
        );
        bar.stop();
      }
      if (shard) {
        writeMoments(o.statsOut!, plan, stats, { model: source, shard: o.shard });
        emit(
          o.json,
          { statsOut: o.statsOut, shard: o.shard, images: [...stats.values()][0]?.count, skipped },
          () => `wrote statistics of shard ${o.shard} to ${o.statsOut}`,
        );
        return;
      }
      const fit = fitClosedForm(plan, stats, { ridge: o.ridge });
      values = fit.values;
      fitReport = fit.report;
      for (const r of fit.report) {
        const dim = plan.layers.find((p) => p.layer.name === r.layer)!.dim;
        if (r.samples < 4 * dim) {
          process.stderr.write(
            `denoiserep: layer '${r.layer}': only ${r.samples} feature vectors for ${dim} dimensions; unseen directions will be shrunk (use more images)\n`,
          );
        }
        if (r.regularised)
          process.stderr.write(
            `denoiserep: layer '${r.layer}': covariance is singular; regularised with diagonal jitter ${r.jitter.toExponential(2)}\n`,
          );
      }
    } else {
      const res = await trainLabelFree({
        model,
        plan,
        init: initDenoisers(plan, o.seed),
        data: data!,
        preprocess: prep,
        config: {
          epochs: o.epochs,
          batchSize: o.batchSize,
          lr: o.lr,
          seed: o.seed,
          threads: o.threads,
        },
      });
      values = res.values;
      fitReport = res.history;
    }

    const fused = fuseModel(model, plan, values);
    let verification: unknown;
    if (data) {
      const first = feedBatches(data, input.name, Math.min(o.batchSize, data.size), prep).next()
        .value!;
      const v = await verifyFusion({
        original: model,
        fused,
        plan,
        denoisers: values,
        inputs: first,
        tolerance: o.tolerance,
        threads: o.threads,
        latencyBatches: [],
      });
      verification = {
        ok: v.ok,
        topologyIdentical: v.topology.identical,
        maxRelOutput: Math.max(...v.outputs.map((e) => e.maxRel)),
        maxRelLayer: Math.max(...v.layers.map((e) => e.maxRel)),
      };
      if (!v.ok) throw new DataError(`fused model failed verification: ${v.failures.join('; ')}`);
    }
    mkdirSync(dirname(resolve(o.out!)), { recursive: true });
    writeModel(o.out!, fused);
    if (o.denoisersOut)
      writeDenoisers(o.denoisersOut, plan, o.layers, values, { model: source, mode: o.mode });
    // Denoising loss on up to 512 images, before (zero predictor for the closed form, the
    // initial denoisers for SGD) and after fitting, with the same noise draws.
    let lossBefore: Record<string, number> | undefined;
    let lossAfter: Record<string, number> | undefined;
    if (data) {
      const sample = subset(
        data,
        Int32Array.from({ length: Math.min(512, data.size) }, (_, i) => i),
      );
      const zero = zeroDenoisers(values);
      const m = {
        model,
        plan,
        data: sample,
        batchSize: o.batchSize,
        seed: o.seed,
        preprocess: prep,
        threads: o.threads,
      };
      lossBefore = await measureDenoisingLoss({
        ...m,
        values: o.mode === 'sgd' ? initDenoisers(plan, o.seed) : zero,
      });
      lossAfter = await measureDenoisingLoss({ ...m, values });
    }
    const layers = diagnoseFusion({
      plan,
      original: model,
      fused,
      denoisers: values,
      lossBefore,
      lossAfter,
    });
    if (o.report) {
      writeJsonAtomic(o.report, {
        model: source,
        mode: o.mode,
        layers,
        fit: fitReport,
        verification,
        skipped,
      });
      const svg = spectraSvg(layers);
      const stem = o.report.replace(/\.json$/, '');
      writeFileAtomic(`${stem}.svg`, svg);
      writeFileAtomic(`${stem}.png`, await svgToPng(svg));
    }
    const result = {
      model: source,
      out: o.out,
      mode: o.mode,
      layers: plan.layers.length,
      images: data?.size,
      skipped,
      verification,
    };
    emit(o.json, result, () =>
      [
        `fitted ${plan.layers.length} layers of ${source} (${o.mode}${data ? `, ${data.size} images` : ''}${skipped ? `, ${skipped} corrupt skipped` : ''})`,
        ...layers.map(
          (l) =>
            `  t=${String(l.t).padStart(3)} ${l.layer.padEnd(28)} weight change ${l.relativeWeightChange.toExponential(2)}${l.summary ? `  σ ∈ [${l.summary.min.toFixed(5)}, ${l.summary.max.toFixed(5)}]` : ''}`,
        ),
        `wrote ${o.out}`,
      ].join('\n'),
    );
  });
}
