import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadFashionMnist, FMNIST_DEFAULT_PATH } from '../data/fashion-mnist.js';
import type { ImageDataset } from '../data/dataset.js';
import { DataError, ResumeMismatchError, UsageError } from '../util/errors.js';
import { getPreset, isDiffusionPreset } from '../models/registry.js';
import type { ModelDef } from '../models/types.js';
import { expectedWeights, exportOnnx } from '../models/weights.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { isZooRef, loadZooModel } from '../models/zoo.js';
import { ParamStore } from '../models/params.js';
import { type SupervisedConfig, trainSupervised } from '../train/loop.js';
import { emit, floatArg, intArg, withCommon } from './common.js';
import { pretrainDdpm } from './pretrain-ddpm.js';
import { type Progress, startProgress } from './progress.js';

/**
 * Loads Fashion-MNIST splits: `embedded` (the committed subset), `fashion-mnist` (the
 * Debian package's full set) or a folder of IDX files.
 * @param data - embedded | fashion-mnist | folder
 * @param only - load only this split (the other is returned empty-handed as undefined)
 */
export async function loadTrainTest(
  data: string,
): Promise<{ train: ImageDataset; test: ImageDataset }>;
export async function loadTrainTest(
  data: string,
  only: 'test',
): Promise<{ train?: ImageDataset; test: ImageDataset }>;
export async function loadTrainTest(
  data: string,
  only?: 'test',
): Promise<{ train?: ImageDataset; test: ImageDataset }> {
  const src =
    data === 'embedded' ? 'embedded' : data === 'fashion-mnist' ? FMNIST_DEFAULT_PATH : data;
  if (src !== 'embedded' && !existsSync(src)) {
    throw new DataError(
      data === 'fashion-mnist'
        ? `--data fashion-mnist needs ${FMNIST_DEFAULT_PATH} (apt-get install dataset-fashion-mnist)`
        : `--data ${data}: no such folder (use embedded, fashion-mnist or an IDX folder)`,
    );
  }
  const test = await loadFashionMnist(src, 'test');
  return { train: only === 'test' ? undefined : await loadFashionMnist(src, 'train'), test };
}

/** The parsed flags of `pretrain`. */
export interface PretrainOptions {
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
  randomErasing: number;
  clipNorm?: number;
  task: string;
  tripletWeight: number;
  evalEvery: number;
  out: string;
  resume: boolean | string;
  override: boolean;
  checkpointEvery: number;
  init?: string;
  emaDecay: number;
  json: boolean;
  seed: number;
  threads: number;
}

/**
 * Starting weights for `--init`: every parameter and buffer of the preset, with its shape,
 * from a checkpoint of the same preset; anything else is a UsageError naming the problem.
 */
function initialStore(path: string, preset: string, def: ModelDef): ParamStore {
  if (isZooRef(path)) {
    const z = loadZooModel(path);
    if (z.def.name !== preset)
      throw new UsageError(`--init ${path} holds ${z.def.name} weights, not ${preset}`);
    return z.values;
  }
  const c = loadCheckpoint(path);
  if (c.state.preset !== preset)
    throw new UsageError(`--init ${path} holds a ${c.state.preset} checkpoint, not ${preset}`);
  const problems: string[] = [];
  for (const [name, shape] of expectedWeights(def)) {
    const t = c.tensors.get(name);
    if (!t) problems.push(`${name} missing`);
    else if (t.dims.join(',') !== shape.join(','))
      problems.push(`${name} is [${t.dims}], expected [${shape}]`);
  }
  if (problems.length)
    throw new UsageError(`--init ${path} does not fit ${preset}: ${problems.join('; ')}`);
  return ParamStore.fromTensors(c.tensors);
}

/** The training configuration of the flags, checked. */
function pretrainConfig(o: PretrainOptions): SupervisedConfig {
  if (o.optimizer !== 'adamw' && o.optimizer !== 'sgd')
    throw new UsageError(`--optimizer must be adamw or sgd, got '${o.optimizer}'`);
  if (o.task !== 'classification' && o.task !== 'reid')
    throw new UsageError(`--task must be classification or reid, got '${o.task}'`);
  // Each flag's own range is checked as it is parsed (src/util/ranges.ts); these relate two.
  if (o.warmupEpochs > o.epochs)
    throw new UsageError(`--warmup-epochs ${o.warmupEpochs} exceeds --epochs ${o.epochs}`);
  if (o.minLr > o.lr) throw new UsageError(`--min-lr ${o.minLr} exceeds --lr ${o.lr}`);
  return {
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    minLr: o.minLr,
    weightDecay: o.weightDecay,
    optimizer: o.optimizer,
    labelSmoothing: o.labelSmoothing,
    warmupEpochs: o.warmupEpochs,
    augment: {
      ...(o.augment ? { cropPad: 2, flip: true } : {}),
      erasing: o.randomErasing,
    },
    clipNorm: o.clipNorm,
    task: o.task,
    tripletWeight: o.tripletWeight,
    evalEvery: o.evalEvery,
    seed: o.seed,
    threads: o.threads,
  };
}

/** The flag of each hyper-parameter a resume compares. */
const HYPER_FLAGS: Record<string, string> = {
  epochs: '--epochs',
  batchSize: '--batch-size',
  lr: '--lr',
  minLr: '--min-lr',
  warmupEpochs: '--warmup-epochs',
  weightDecay: '--weight-decay',
  optimizer: '--optimizer',
  labelSmoothing: '--label-smoothing',
  clipNorm: '--clip-norm',
  augment: '--augment / --random-erasing',
  task: '--task',
  tripletWeight: '--triplet-weight',
  seed: '--seed',
};

/** A refused resume, told in flags. */
function inFlags(err: ResumeMismatchError): UsageError {
  const show = (v: unknown) => (v === undefined || v === null ? 'unset' : JSON.stringify(v));
  const list = err.changed
    .map((c) => `${HYPER_FLAGS[c.key] ?? c.key} ${show(c.was)} -> ${show(c.now)}`)
    .join(', ');
  return new UsageError(
    `--resume: the checkpoint was trained with other settings: ${list}; pass --override to resume with the new ones`,
  );
}

/**
 * `denoiserep pretrain`: supervised training of a backbone preset. (Long only by its
 * list of options; the action is short.)
 */
export function pretrainCommand(program: Command): void {
  withCommon(
    program
      .command('pretrain')
      .description(
        'train a backbone preset on Fashion-MNIST (checkpoints, JSONL log, final model.onnx)',
      )
      .requiredOption(
        '--model <preset>',
        'model preset, e.g. vit-tiny-fmnist, or a DDPM U-Net (ddpm-unet-fmnist: labels unused)',
      )
      .option(
        '--data <src>',
        'embedded (committed subset), fashion-mnist (/usr/share/datasets/fashion-mnist) or an IDX folder',
        'embedded',
      )
      .option('--epochs <n>', 'epochs', intArg('--epochs'), 10)
      .option('--batch-size <n>', 'batch size', intArg('--batch-size'), 128)
      .option('--lr <x>', 'peak learning rate', floatArg('--lr'), 3e-3)
      .option('--min-lr <x>', 'final learning rate', floatArg('--min-lr'), 1e-5)
      .option(
        '--weight-decay <x>',
        'weight decay (not on biases, norms, tokens)',
        floatArg('--weight-decay'),
        0.05,
      )
      .option('--optimizer <name>', 'adamw or sgd', 'adamw')
      .option('--label-smoothing <x>', 'label smoothing', floatArg('--label-smoothing'), 0.1)
      .option('--warmup-epochs <x>', 'linear warm-up', floatArg('--warmup-epochs'), 0.5)
      .option('--augment', 'random crop (pad 2) and horizontal flip', false)
      .option(
        '--random-erasing <p>',
        'random erasing probability (0: off)',
        floatArg('--random-erasing'),
        0,
      )
      .option('--clip-norm <x>', 'clip the global gradient norm', floatArg('--clip-norm'))
      .option(
        '--task <task>',
        'classification (cross-entropy) or reid (ID cross-entropy + batch-hard triplet on PK batches)',
        'classification',
      )
      .option(
        '--triplet-weight <x>',
        'weight of the triplet loss (reid)',
        floatArg('--triplet-weight'),
        1,
      )
      .option(
        '--eval-every <n>',
        'evaluate every N epochs (and at the end)',
        intArg('--eval-every'),
        1,
      )
      .requiredOption('--out <dir>', 'output folder')
      .option(
        '--resume [dir]',
        'continue bit-identically from the checkpoint in --out, or from the one in [dir]',
        false,
      )
      .option(
        '--override',
        'with --resume: accept changed hyper-parameters (--lr, --batch-size, --epochs, ...)',
        false,
      )
      .option(
        '--checkpoint-every <n>',
        'also checkpoint every N steps inside an epoch (0: at epoch ends only)',
        intArg('--checkpoint-every'),
        0,
      )
      .option(
        '--ema-decay <x>',
        'diffusion presets: largest decay of the EMA of the weights',
        floatArg('--ema-decay'),
        0.999,
      )
      .option(
        '--init <dir>',
        'start from the weights of zoo:<preset>, a checkpoint or a pretrain output folder of the same preset, with a fresh schedule and optimiser (fine-tuning)',
      ),
  ).action(async function (this: Command, o: PretrainOptions) {
    if (isDiffusionPreset(o.model)) return pretrainDdpm(o, this);
    const config = pretrainConfig(o);
    const def = getPreset(o.model, { bnneck: o.task === 'reid' });
    const init = o.init === undefined ? undefined : initialStore(o.init, o.model, def);
    if (init && o.resume !== false) throw new UsageError('--init and --resume exclude each other');
    if (o.override && o.resume === false) throw new UsageError('--override goes with --resume');
    const { train, test } = await loadTrainTest(o.data);
    mkdirSync(o.out, { recursive: true });
    // The bar starts at the first step, when the loop knows the schedule's length.
    let bar: Progress | undefined;
    const res = await trainSupervised({
      def,
      train,
      test,
      outDir: o.out,
      resume: o.resume,
      override: o.override,
      checkpointEvery: o.checkpointEvery,
      init,
      config,
      onStep: (k, total, loss, imagesPerSecond) => {
        bar ??= startProgress(`pretrain ${o.model}`, total, o.json);
        bar.update(k, { loss, 'img/s': imagesPerSecond.toFixed(0) });
      },
    })
      .catch((err: unknown) => {
        throw err instanceof ResumeMismatchError ? inFlags(err) : err;
      })
      .finally(() => bar?.stop());
    exportOnnx(def, res.store, join(o.out, 'model.onnx'));
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
