import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadFashionMnist, FMNIST_DEFAULT_PATH } from '../data/fashion-mnist.js';
import type { ImageDataset } from '../data/dataset.js';
import { UsageError } from '../errors.js';
import { getPreset } from '../models/registry.js';
import { writeModel } from '../onnx/serialize.js';
import { trainSupervised } from '../train/loop.js';
import { emit, parseFloatArg, parseIntArg, withCommon } from './common.js';
import { startProgress } from './progress.js';

/** Loads a train/test pair: the embedded subset, the Debian full set, or an IDX folder. */
export async function loadTrainTest(
  data: string,
): Promise<{ train: ImageDataset; test: ImageDataset }> {
  const src =
    data === 'embedded' ? 'embedded' : data === 'fashion-mnist' ? FMNIST_DEFAULT_PATH : data;
  return { train: await loadFashionMnist(src, 'train'), test: await loadFashionMnist(src, 'test') };
}

interface PretrainOptions {
  model: string;
  data: string;
  epochs: number;
  batchSize: number;
  lr: number;
  minLr: number;
  weightDecay: number;
  optimizer: string;
  labelSmoothing: number;
  warmupEpochs: number;
  augment: boolean;
  evalEvery: number;
  out: string;
  resume: boolean;
  json: boolean;
  seed: number;
  threads: number;
}

/** `denoiserep pretrain`: supervised training of a backbone preset. */
export function pretrainCommand(program: Command): void {
  withCommon(
    program
      .command('pretrain')
      .description(
        'train a backbone preset on Fashion-MNIST (checkpoints, JSONL log, final model.onnx)',
      )
      .requiredOption('--model <preset>', 'model preset, e.g. vit-tiny-fmnist')
      .option(
        '--data <src>',
        'embedded (committed subset), fashion-mnist (/usr/share/datasets/fashion-mnist) or an IDX folder',
        'embedded',
      )
      .option('--epochs <n>', 'epochs', parseIntArg('--epochs', 1), 10)
      .option('--batch-size <n>', 'batch size', parseIntArg('--batch-size', 1), 128)
      .option('--lr <x>', 'peak learning rate', parseFloatArg('--lr'), 3e-3)
      .option('--min-lr <x>', 'final learning rate', parseFloatArg('--min-lr'), 1e-5)
      .option(
        '--weight-decay <x>',
        'weight decay (not on biases, norms, tokens)',
        parseFloatArg('--weight-decay'),
        0.05,
      )
      .option('--optimizer <name>', 'adamw or sgd', 'adamw')
      .option('--label-smoothing <x>', 'label smoothing', parseFloatArg('--label-smoothing'), 0.1)
      .option('--warmup-epochs <x>', 'linear warm-up', parseFloatArg('--warmup-epochs'), 0.5)
      .option('--augment', 'random crop (pad 2) and horizontal flip', false)
      .option(
        '--eval-every <n>',
        'evaluate every N epochs (and at the end)',
        parseIntArg('--eval-every', 0),
        1,
      )
      .requiredOption('--out <dir>', 'output folder')
      .option('--resume', 'continue from the checkpoint in --out', false),
  ).action(async (o: PretrainOptions) => {
    if (o.optimizer !== 'adamw' && o.optimizer !== 'sgd')
      throw new UsageError(`--optimizer must be adamw or sgd, got '${o.optimizer}'`);
    const def = getPreset(o.model);
    const { train, test } = await loadTrainTest(o.data);
    mkdirSync(o.out, { recursive: true });
    const bar = startProgress(
      `pretrain ${o.model}`,
      Math.ceil(train.size / o.batchSize) * o.epochs,
      o.json,
    );
    const res = await trainSupervised({
      def,
      train,
      test,
      outDir: o.out,
      resume: o.resume,
      config: {
        epochs: o.epochs,
        batchSize: o.batchSize,
        lr: o.lr,
        minLr: o.minLr,
        weightDecay: o.weightDecay,
        optimizer: o.optimizer,
        labelSmoothing: o.labelSmoothing,
        warmupEpochs: o.warmupEpochs,
        augment: o.augment ? { cropPad: 2, flip: true } : undefined,
        evalEvery: o.evalEvery,
        seed: o.seed,
        threads: o.threads,
      },
      onStep: (k, _total, loss) => bar.update(k, { loss }),
    });
    bar.stop();
    writeModel(join(o.out, 'model.onnx'), res.model);
    const last = res.history.at(-1);
    emit(o.json, { model: o.model, out: o.out, epochs: res.history.length, final: last }, () =>
      [
        ...res.history.map(
          (h) =>
            `epoch ${h.epoch}: loss ${h.loss.toFixed(4)}, ${h.imagesPerSecond.toFixed(0)} img/s${h.eval ? `, acc@1 ${(100 * h.eval.acc1).toFixed(2)}%, mAP ${(100 * h.eval.mAP).toFixed(2)}%` : ''}`,
        ),
        `wrote ${join(o.out, 'model.onnx')} and ${join(o.out, 'checkpoint')}`,
      ].join('\n'),
    );
  });
}
