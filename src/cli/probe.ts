import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { subset } from '../data/dataset.js';
import { DDPM_MODEL_FILE, loadDiffusionModel } from '../diffusion/load.js';
import { ATTENTION_PROBE, LINEAR_PROBE, type ProbeConfig } from '../experiments/probe.js';
import {
  type ProbeSource,
  runProbe,
  runSweep,
  SWEEP_FILES,
  SWEEP_TS,
  sweepDir,
} from '../experiments/probe-run.js';
import { isDiffusionPreset } from '../models/registry.js';
import { isZooRef, ZOO_PREFIX } from '../models/zoo.js';
import { readModel } from '../onnx/serialize.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { wilsonInterval } from '../eval/statistics.js';
import { ModelError, UsageError } from '../util/errors.js';
import { emit, floatArg, intArg, listArg, withCommon } from './common.js';
import { loadEvalModel } from './eval.js';
import { isModelFile } from '../models/load.js';
import { checkOutputPaths } from './paths.js';
import { loadTrainTest } from './pretrain.js';

interface ProbeOptions {
  data: string;
  t?: number;
  block?: string;
  head: string;
  poolGrid: number;
  heads: number;
  sweep: boolean;
  ts: number[];
  blocks: string;
  out?: string;
  epochs?: number;
  lr?: number;
  weightDecay?: number;
  batchSize?: number;
  trainImages: number;
  valImages: number;
  json: boolean;
  seed: number;
  threads: number;
}

/** Whether a model argument is one of this project's diffusion U-Nets. */
async function isUNet(arg: string): Promise<boolean> {
  if (statSync(arg).isDirectory()) {
    if (existsSync(join(arg, DDPM_MODEL_FILE))) return isUNet(join(arg, DDPM_MODEL_FILE));
    return isDiffusionPreset(loadCheckpoint(arg).state.preset);
  }
  return isDiffusionPreset((await readModel(arg)).metadata.preset ?? '');
}

async function resolveSource(arg: string): Promise<ProbeSource> {
  if (arg === 'pixels') return { kind: 'pixels' };
  if (isZooRef(arg)) {
    if (isDiffusionPreset(arg.slice(ZOO_PREFIX.length)))
      return { kind: 'unet', unet: await loadDiffusionModel(arg), path: arg };
    return { kind: 'backbone', model: await loadEvalModel(arg), path: arg };
  }
  if (!existsSync(arg)) throw new ModelError(`no such model or run folder: ${arg}`);
  if (await isUNet(arg)) return { kind: 'unet', unet: await loadDiffusionModel(arg), path: arg };
  return { kind: 'backbone', model: await loadEvalModel(arg), path: arg };
}

/** `denoiserep probe`: linear / attention probes of diffusion features, and baselines. */
export function probeCommand(program: Command): void {
  withCommon(
    program
      .command('probe')
      .description('probe frozen features: a DDPM U-Net block at step t, raw pixels, or a backbone')
      .argument(
        '<source>',
        "a DDPM U-Net (model.onnx, run folder), 'pixels', or a backbone (.onnx, zoo:<preset>, pretrain folder)",
      )
      .option('--data <src>', 'embedded, fashion-mnist or an IDX folder', 'fashion-mnist')
      .option('--t <n>', "noise step (0: clean input); default: the sweep's best", intArg('--t'))
      .option('--block <name>', "U-Net block (down.<l>, mid, up.<l>); default: the sweep's best")
      .option('--head <kind>', 'linear (mean-pooled) or attention (pooled to a grid)', 'linear')
      .option(
        '--pool-grid <n>',
        'attention head: pool the block to n x n tokens',
        intArg('--pool-grid'),
        4,
      )
      .option('--heads <n>', 'attention head: heads', intArg('--heads'), 4)
      .option('--sweep', 'linear probes over --ts x --blocks, with a heatmap', false)
      .addOption(
        new Option('--ts <list>', 'sweep steps, comma-separated')
          .argParser(listArg('--ts', 64))
          .default([...SWEEP_TS], SWEEP_TS.join(',')),
      )
      .option('--blocks <list>', "sweep blocks, or 'all'", 'all')
      .option('--out <dir>', "sweep results folder (default: the model's folder)")
      .option('--epochs <n>', 'probe epochs', intArg('--epochs'))
      .option('--lr <x>', 'probe peak learning rate', floatArg('--lr'))
      .option(
        '--weight-decay <x>',
        'L2 (linear) or weight decay (attention)',
        floatArg('--weight-decay'),
      )
      .option('--batch-size <n>', 'probe batch size', intArg('--batch-size'))
      .option(
        '--train-images <n>',
        'use only the first n training images (0: all)',
        intArg('--train-images'),
        0,
      )
      .option(
        '--val-images <n>',
        'with --sweep: score the cells on the last n training images, held out from the probes (0: on the test images)',
        intArg('--val-images'),
        0,
      ),
  ).action(async (arg: string, o: ProbeOptions) => {
    if (o.head !== 'linear' && o.head !== 'attention')
      throw new UsageError(`--head must be linear or attention, got '${o.head}'`);
    if (o.sweep) {
      if (isZooRef(arg) && o.out === undefined)
        throw new UsageError('--sweep of a zoo entry needs --out <dir> for its results');
      const outDir = o.out ?? sweepDir(arg);
      checkOutputPaths(
        isModelFile(arg) ? [{ flag: '<source>', path: arg }] : [],
        Object.values(SWEEP_FILES).map((f) => ({ flag: '--out', path: join(outDir, f) })),
      );
    }
    if (o.valImages > 0 && !o.sweep)
      throw new UsageError(
        '--val-images goes with --sweep (a single probe scores on the test set)',
      );
    const source = await resolveSource(arg);
    const data = await loadTrainTest(o.data);
    // Held-out images for choosing the sweep's cell: the last --val-images training images,
    // never among the probes' training images, so the test set plays no part in the choice.
    const pool = data.train.size - o.valImages;
    if (pool < 1)
      throw new UsageError(
        `--val-images ${o.valImages} leaves no training images (${data.train.size} in all)`,
      );
    const range = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => from + i);
    const val =
      o.valImages > 0
        ? {
            ...subset(data.train, range(pool, data.train.size)),
            name: `${data.train.name} [${pool}, ${data.train.size}) held out`,
          }
        : undefined;
    const n = o.trainImages === 0 ? pool : Math.min(o.trainImages, pool);
    const train = n < data.train.size ? subset(data.train, range(0, n)) : data.train;
    const base = o.head === 'linear' ? LINEAR_PROBE : ATTENTION_PROBE;
    const config: ProbeConfig = {
      ...base,
      ...(o.epochs !== undefined && { epochs: o.epochs }),
      ...(o.lr !== undefined && { lr: o.lr }),
      ...(o.weightDecay !== undefined && { weightDecay: o.weightDecay }),
      ...(o.batchSize !== undefined && { batchSize: o.batchSize }),
      seed: o.seed,
      threads: o.threads,
    };
    const say = (s: string) => (o.json ? undefined : process.stderr.write(`${s}\n`));
    if (o.sweep) {
      if (source.kind !== 'unet') throw new UsageError('--sweep needs a DDPM U-Net');
      const ts = o.ts;
      const blocks =
        o.blocks === 'all' ? source.unet.def.blocks : o.blocks.split(',').map((s) => s.trim());
      const r = await runSweep({
        unet: source.unet,
        train,
        test: val ?? data.test,
        ts,
        blocks,
        config,
        outDir: o.out ?? sweepDir(arg),
        onStage: say,
        onCell: (c) => say(`  t=${c.t} ${c.block}: ${(100 * c.acc1).toFixed(2)}%`),
      });
      const best = { t: r.best.t, block: r.best.block, acc1: 100 * r.best.acc1 };
      emit(
        o.json,
        { ...best, cells: r.cells, files: r.files },
        () =>
          `best: t=${best.t}, ${best.block}, acc@1 ${best.acc1.toFixed(2)}%\nwrote ${r.files.join(', ')}`,
      );
      return;
    }
    const r = await runProbe({
      source,
      train,
      test: data.test,
      head: o.head,
      t: o.t,
      block: o.block,
      grid: o.poolGrid,
      heads: o.heads,
      config,
      onStage: say,
    });
    const line = { t: r.t, block: r.block, acc1: r.acc1 };
    const nTest = r.result.testImages;
    const ci = wilsonInterval(Math.round(r.result.acc1 * nTest), nTest).ci!;
    emit(
      o.json,
      {
        ...line,
        // 95% Wilson interval over the test images, in percent.
        ci95: ci.map((x) => Number((100 * x).toPrecision(6))),
        head: r.head,
        chosenBy: r.chosenBy,
        trainImages: train.size,
        testImages: r.result.testImages,
      },
      () =>
        `${r.head} probe of ${r.t === null ? r.block : `${r.block} at t=${r.t}${r.chosenBy === 'fallback' ? ' (no sweep found: default)' : r.chosenBy === 'sweep' ? " (the sweep's best)" : r.chosenBy === 'manifest' ? " (the shipped sweep's best)" : ''}`}: acc@1 ${r.acc1.toFixed(2)}% [${(100 * ci[0]).toFixed(2)}, ${(100 * ci[1]).toFixed(2)}] on ${r.result.testImages} test images (${train.size} training images)`,
    );
  });
}
