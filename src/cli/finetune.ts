import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { writeDenoisers } from '../denoise/denoiser-file.js';
import { fuseModel } from '../denoise/fuse.js';
import { type ConversionPlan, initDenoisers, planConversion } from '../denoise/plan.js';
import type { TimestepMode } from '../denoise/schedule.js';
import { type LabelAugConfig, trainLabelAugmented } from '../denoise/train.js';
import { verifyFusion } from '../denoise/verify.js';
import { DataError, UsageError } from '../util/errors.js';
import { evaluateModel } from '../eval/evaluate.js';
import { getPreset } from '../models/registry.js';
import { INPUT_NAME, type ModelDef } from '../models/types.js';
import type { ImageDataset } from '../data/dataset.js';
import type { Model } from '../onnx/ir.js';
import { writeModel } from '../onnx/serialize.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { isZooRef, loadZooModel } from '../models/zoo.js';
import { evalModelWith } from '../train/loop.js';
import { ParamStore } from '../models/params.js';
import { emit, floatArg, intArg, withCommon } from './common.js';
import { loadTrainTest } from './pretrain.js';

interface FinetuneOptions {
  data: string;
  epochs: number;
  phaseEpochs: number;
  denoiseWeight: number;
  lr: number;
  backboneLr: number;
  batchSize: number;
  layers: string;
  timesteps: string;
  task?: string;
  out: string;
  json: boolean;
  seed: number;
  threads: number;
}

/** The label-augmented configuration of the flags. */
function finetuneConfig(o: FinetuneOptions, task: 'classification' | 'reid'): LabelAugConfig {
  return {
    epochs: o.epochs,
    phaseEpochs: o.phaseEpochs,
    denoiseWeight: o.denoiseWeight,
    batchSize: o.batchSize,
    lr: o.lr,
    backboneLr: o.backboneLr,
    labelSmoothing: 0.1,
    task,
    seed: o.seed,
    threads: o.threads,
  };
}

/** Fuses the denoisers and verifies the fused model against the unfused one on test images. */
async function fuseVerified(
  def: ModelDef,
  unfused: Model,
  plan: ConversionPlan,
  values: Map<string, Tensor>,
  test: ImageDataset,
  threads: number,
): Promise<Model> {
  const fused = fuseModel(unfused, plan, values);
  const n = Math.min(64, test.size);
  const x = float32(
    [n, ...def.inputShape],
    test.images.slice(0, n * def.inputShape.reduce((a, b) => a * b, 1)),
  );
  const v = await verifyFusion({
    original: unfused,
    fused,
    plan,
    denoisers: values,
    inputs: { [INPUT_NAME]: x },
    threads,
    latencyBatches: [],
  });
  if (!v.ok) throw new DataError(`fused model failed verification: ${v.failures.join('; ')}`);
  return fused;
}

/** The backbone to fine-tune: a shipped `zoo:<preset>` or a pretrain checkpoint. */
function finetuneStart(arg: string): { def: ModelDef; backbone: ParamStore } {
  if (isZooRef(arg)) {
    const z = loadZooModel(arg);
    return { def: z.def, backbone: z.values.clone() };
  }
  const dir = existsSync(join(arg, 'checkpoint', 'state.json')) ? join(arg, 'checkpoint') : arg;
  if (!existsSync(join(dir, 'state.json')))
    throw new DataError(`${arg} is not zoo:<preset>, a pretrain output or a checkpoint folder`);
  const ck = loadCheckpoint(dir);
  return {
    def: getPreset(ck.state.preset, ck.state.presetOptions ?? {}),
    backbone: ParamStore.fromTensors(ck.tensors),
  };
}

/**
 * `denoiserep finetune`: label-augmented DenoiseRep on a pretrained checkpoint. (Long
 * only by its list of options.)
 */
export function finetuneCommand(program: Command): void {
  withCommon(
    program
      .command('finetune')
      .description('label-augmented DenoiseRep: alternate denoiser and backbone phases, then fuse')
      .argument(
        '<checkpoint>',
        'zoo:<preset>, a pretrain output folder (or its checkpoint/ folder)',
      )
      .option('--data <src>', 'embedded, fashion-mnist or an IDX folder', 'embedded')
      .option(
        '--epochs <n>',
        'total epochs (phases alternate, denoisers first)',
        intArg('--epochs'),
        20,
      )
      .option(
        '--phase-epochs <n>',
        "epochs per phase (the authors' CIFAR-10 setting: 10)",
        intArg('--phase-epochs'),
        10,
      )
      .option(
        '--task <task>',
        'classification (cross-entropy) or reid (ID cross-entropy + batch-hard triplet on PK batches); default: reid for a BNNeck checkpoint',
      )
      .option(
        '--denoise-weight <x>',
        'weight of the denoising loss next to the task loss',
        floatArg('--denoise-weight'),
        0.01,
      )
      .option('--lr <x>', 'denoiser learning rate', floatArg('--lr'), 1e-3)
      .option(
        '--backbone-lr <x>',
        'backbone learning rate in the backbone phases',
        floatArg('--backbone-lr'),
        3e-4,
      )
      .option('--batch-size <n>', 'batch size', intArg('--batch-size'), 128)
      .option('--layers <filter>', 'layers: all, mlp, linear, conv, or globs', 'all')
      .option('--timesteps <mode>', 'paper (N..1) or public-code', 'paper')
      .requiredOption('--out <dir>', 'output folder (fused.onnx, denoisers.safetensors)'),
  ).action(async (arg: string, o: FinetuneOptions) => {
    const { def, backbone } = finetuneStart(arg);
    const task = o.task ?? (def.bnneck ? 'reid' : 'classification');
    if (task !== 'classification' && task !== 'reid')
      throw new UsageError(`--task must be classification or reid, got '${task}'`);
    const { train, test } = await loadTrainTest(o.data);
    if (!train || !test) throw new DataError(`--data ${o.data}: train and test splits are needed`);
    const base = evalModelWith(def, backbone);
    const plan = planConversion(base.graph, {
      filter: o.layers,
      timesteps: o.timesteps as TimestepMode,
      source: def.name,
    });
    const before = await evaluateModel(base, test, { threads: o.threads });
    const res = await trainLabelAugmented({
      def,
      backbone,
      plan,
      init: initDenoisers(plan, o.seed),
      data: train,
      filter: o.layers,
      config: finetuneConfig(o, task),
      log: (r) => {
        if (r.kind === 'epoch' && !o.json)
          process.stderr.write(
            `epoch ${String(r.epoch)} (${String(r.phase)}): loss ${Number(r.loss).toFixed(4)}\n`,
          );
      },
    });
    const unfused = evalModelWith(def, res.backbone);
    const fused = await fuseVerified(def, unfused, plan, res.values, test, o.threads);
    const after = await evaluateModel(fused, test, { threads: o.threads });
    mkdirSync(o.out, { recursive: true });
    writeModel(join(o.out, 'fused.onnx'), fused);
    writeDenoisers(join(o.out, 'denoisers.safetensors'), plan, o.layers, res.values, {
      model: def.name,
    });
    writeModel(join(o.out, 'backbone.onnx'), unfused);
    emit(
      o.json,
      {
        checkpoint: arg,
        out: o.out,
        layers: plan.layers.length,
        task,
        before,
        after,
        history: res.history,
      },
      () =>
        [
          `label-augmented DenoiseRep on ${def.name} (${plan.layers.length} layers, ${o.epochs} epochs)`,
          `  before: acc@1 ${(100 * before.acc1).toFixed(2)}%, mAP ${(100 * before.mAP).toFixed(2)}%`,
          `  after (fused): acc@1 ${(100 * after.acc1).toFixed(2)}%, mAP ${(100 * after.mAP).toFixed(2)}%`,
          `wrote ${join(o.out, 'fused.onnx')}, denoisers.safetensors, backbone.onnx (for verify)`,
        ].join('\n'),
    );
  });
}
