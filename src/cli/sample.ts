import type { Command } from 'commander';
import { loadDiffusionModel } from '../diffusion/load.js';
import { frechetReport, generateImages } from '../experiments/generate.js';
import { imageGridPng } from '../experiments/image-grid.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UsageError } from '../util/errors.js';
import { emit, floatArg, intArg, withCommon } from './common.js';
import { loadEvalModel } from './eval.js';
import { loadTrainTest } from './pretrain.js';
import { isModelFile } from '../models/load.js';
import { checkOutputPaths } from './paths.js';
import { startProgress } from './progress.js';

interface SampleOptions {
  n: number;
  method: string;
  steps?: number;
  eta: number;
  out?: string;
  grid: number;
  fidModel?: string;
  data: string;
  batchSize: number;
  json: boolean;
  seed: number;
  threads: number;
}

/** `denoiserep sample`: images from a trained DDPM U-Net, a PNG grid, and optionally FD. */
export function sampleCommand(program: Command): void {
  withCommon(
    program
      .command('sample')
      .description(
        'draw images from a trained DDPM U-Net (DDPM or DDIM), write a PNG grid, measure FD',
      )
      .argument(
        '<model>',
        'model.onnx of `pretrain --model ddpm-*`, its run folder or a checkpoint',
      )
      .option('--n <n>', 'images to draw', intArg('--n'), 64)
      .option('--method <name>', 'ddim (--steps, --eta) or ddpm (all T steps)', 'ddim')
      .option('--steps <n>', "DDIM steps, at most the model's T (default 50)", intArg('--steps'))
      .option('--eta <x>', 'DDIM eta: 0 deterministic, 1 DDPM-like', floatArg('--eta'), 0)
      .option('--out <file.png>', 'PNG grid of the first --grid images')
      .option('--grid <n>', 'images in the grid', intArg('--grid'), 64)
      .option(
        '--fid-model <model>',
        'backbone (.onnx, zoo:<preset> or pretrain folder, e.g. zoo:resnet-tiny-fmnist) whose `feature` output the Fréchet distance uses; draw --n 1000 or more',
      )
      .option('--data <src>', 'real test images for the Fréchet distance', 'fashion-mnist')
      .option('--batch-size <n>', 'images per U-Net run', intArg('--batch-size'), 256),
  ).action(async (arg: string, o: SampleOptions) => {
    if (o.method !== 'ddim' && o.method !== 'ddpm')
      throw new UsageError(`--method must be ddim or ddpm, got '${o.method}'`);
    if (!o.out && !o.fidModel) throw new UsageError('give --out grid.png, --fid-model, or both');
    checkOutputPaths(
      [
        ...(isModelFile(arg) ? [{ flag: '<model>', path: arg }] : []),
        ...(o.fidModel && isModelFile(o.fidModel)
          ? [{ flag: '--fid-model', path: o.fidModel }]
          : []),
      ],
      o.out ? [{ flag: '--out', path: o.out }] : [],
    );
    const { def, values, source } = await loadDiffusionModel(arg);
    const backbone = o.fidModel ? await loadEvalModel(o.fidModel) : undefined;
    const t0 = Date.now();
    const bar = startProgress(`sample ${o.method}`, 1, o.json);
    const px = await generateImages(def, values, {
      n: o.n,
      method: o.method,
      steps: o.steps,
      eta: o.eta,
      seed: o.seed,
      batchSize: o.batchSize,
      threads: o.threads,
      onStep: (done, total) => bar.update(done / total),
    });
    bar.stop();
    const seconds = (Date.now() - t0) / 1000;
    const per = def.inputShape.reduce((a, d) => a * d, 1);
    if (o.out) {
      const k = Math.min(o.grid, o.n);
      writeFileAtomic(
        o.out,
        await imageGridPng(px.subarray(0, k * per), def.inputShape, { scale: 2 }),
      );
    }
    const fid = backbone
      ? await frechetReport(backbone, px, (await loadTrainTest(o.data, 'test')).test, o.threads)
      : undefined;
    const steps = o.method === 'ddpm' ? 1000 : (o.steps ?? 50);
    emit(
      o.json,
      {
        model: source,
        n: o.n,
        method: o.method,
        steps,
        eta: o.eta,
        seed: o.seed,
        seconds,
        out: o.out,
        fid,
      },
      () =>
        [
          `drew ${o.n} images (${o.method}, ${steps} steps) in ${seconds.toFixed(1)} s${o.out ? `; grid in ${o.out}` : ''}`,
          ...(fid
            ? [
                `Fréchet distance to ${fid.reference} real test images: ${fid.fd.toFixed(3)} (${fid.generated} generated)`,
                `floor, ${fid.floorImages} other real test images: ${fid.floor.toFixed(3)}`,
                ...(fid.generated < 1000
                  ? ['note: FD on fewer than 1,000 images is biased upwards']
                  : []),
              ]
            : []),
        ].join('\n'),
    );
  });
}
