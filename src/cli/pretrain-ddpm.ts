import { join } from 'node:path';
import type { Command } from 'commander';
import { DDPM_MODEL_FILE } from '../diffusion/load.js';
import { trainDdpm } from '../diffusion/train.js';
import { getDiffusionPreset } from '../models/registry.js';
import { unetModel } from '../models/unet-graph.js';
import { writeModel } from '../onnx/serialize.js';
import { UsageError } from '../util/errors.js';
import { emit } from './common.js';
import { loadTrainTest, type PretrainOptions } from './pretrain.js';
import { type Progress, startProgress } from './progress.js';

/** What `pretrain` passes on for a diffusion preset: its flags less the classifier's. */
export type DdpmPretrainFlags = Omit<
  PretrainOptions,
  'optimizer' | 'labelSmoothing' | 'randomErasing' | 'task' | 'tripletWeight' | 'evalEvery'
>;

/** DDPM defaults where the classification defaults of `pretrain` do not fit. */
const DDPM_DEFAULTS = { lr: 1e-3, minLr: 1e-5, weightDecay: 0, warmupEpochs: 0.2, clipNorm: 1 };

/**
 * `denoiserep pretrain --model ddpm-*`: DDPM on the training images (labels unused),
 * checkpoints with the EMA weights, `model.onnx` holding the EMA weights.
 * @param o - the parsed flags
 * @param cmd - the command, to tell flags given from defaults
 */
export async function pretrainDdpm(o: DdpmPretrainFlags, cmd: Command): Promise<void> {
  if (o.init !== undefined) throw new UsageError('--init is not offered for diffusion presets');
  if (o.augment) throw new UsageError('--augment is not offered for diffusion presets');
  if (o.override && o.resume === false) throw new UsageError('--override goes with --resume');
  const given = (k: string) => cmd.getOptionValueSource(k) === 'cli';
  const pick = <K extends keyof typeof DDPM_DEFAULTS>(k: K): number =>
    given(k) ? (o[k] as number) : DDPM_DEFAULTS[k];
  const lr = pick('lr');
  const minLr = pick('minLr');
  const warmupEpochs = pick('warmupEpochs');
  // Each flag's own range is checked as it is parsed; these relate two, defaults included.
  if (warmupEpochs > o.epochs)
    throw new UsageError(`--warmup-epochs ${warmupEpochs} exceeds --epochs ${o.epochs}`);
  if (minLr > lr) throw new UsageError(`--min-lr ${minLr} exceeds --lr ${lr}`);
  const def = getDiffusionPreset(o.model);
  const { train } = await loadTrainTest(o.data);
  let bar: Progress | undefined;
  const res = await trainDdpm({
    def,
    train,
    outDir: o.out,
    resume: o.resume,
    override: o.override,
    checkpointEvery: o.checkpointEvery,
    config: {
      epochs: o.epochs,
      batchSize: o.batchSize,
      lr,
      minLr,
      weightDecay: pick('weightDecay'),
      warmupEpochs,
      clipNorm: pick('clipNorm'),
      emaDecay: o.emaDecay,
      seed: o.seed,
      threads: o.threads,
    },
    onStep: (s, total) => {
      bar ??= startProgress(`pretrain ${o.model}`, total, o.json);
      bar.update(s.globalStep, { loss: s.loss, 'img/s': s.imagesPerSecond.toFixed(0) });
    },
  }).finally(() => bar?.stop());
  const file = join(o.out, DDPM_MODEL_FILE);
  writeModel(file, unetModel(def, res.ema));
  const last = res.history.at(-1);
  emit(o.json, { model: o.model, out: o.out, epochs: res.history.length, final: last }, () =>
    [
      ...res.history.map(
        (h) =>
          `epoch ${h.epoch}: loss ${h.loss.toFixed(4)}, ${h.imagesPerSecond.toFixed(1)} img/s, ${h.seconds.toFixed(0)} s`,
      ),
      `wrote ${file} (EMA weights) and ${join(o.out, 'checkpoint')}`,
    ].join('\n'),
  );
}
