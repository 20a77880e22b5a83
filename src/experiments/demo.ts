import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { feedBatches, gatherBatch, type ImageDataset, subset } from '../data/dataset.js';
import { loadFashionMnist } from '../data/fashion-mnist.js';
import { writeDenoisers } from '../denoise/denoiser-file.js';
import {
  diagnoseFusion,
  type DiagnosticsSummary,
  spectraSvg,
  summarizeDiagnostics,
  svgToPng,
} from '../denoise/diagnostics.js';
import { collectMoments, fitClosedForm } from '../denoise/fit.js';
import { fuseModel } from '../denoise/fuse.js';
import { initDenoisers, planConversion, zeroDenoisers } from '../denoise/plan.js';
import { attachTilde, trainTilde } from '../denoise/tilde.js';
import { measureDenoisingLoss, trainLabelAugmented, trainLabelFree } from '../denoise/train.js';
import { verifyFusion, type VerifyReport } from '../denoise/verify.js';
import { evaluateModel, modelCost } from '../eval/evaluate.js';
import { compareLatency, latencyRunsFor } from '../eval/latency.js';
import { getPreset } from '../models/registry.js';
import { FEATURE_NAME, INPUT_NAME, type ModelDef } from '../models/types.js';
import type { Model } from '../onnx/ir.js';
import { writeModel } from '../onnx/serialize.js';
import { float32 } from '../onnx/tensor.js';
import { SessionCache } from '../runtime/session-cache.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { evalModelWith, type SupervisedConfig, trainSupervised } from '../train/loop.js';
import { ParamStore } from '../models/params.js';
import { Rng } from '../util/rng.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.js';
import { ARMS, type ArmResult, markdownTable, summarizeArms, type SummaryTable } from './table.js';

/** Settings of one demo run; `quick` shrinks every stage. */
export interface DemoSettings {
  preset: string;
  /** Training images used (the committed subset has 10,000). */
  trainImages: number;
  pretrainEpochs: number;
  /** Extra epochs given to the control, label-free and label-augmented arms alike. */
  extraEpochs: number;
  /** DenoiseRep~ reverse steps at inference. */
  tildeSteps: number;
  layers: string;
  batchSize: number;
  pretrainLr: number;
  finetuneLr: number;
  denoiserLr: number;
  denoiseWeight: number;
  latencyRuns: number;
}

export function demoSettings(quick: boolean): DemoSettings {
  return {
    preset: 'vit-tiny-fmnist',
    trainImages: quick ? 2000 : 10000,
    pretrainEpochs: quick ? 3 : 6,
    extraEpochs: 2,
    tildeSteps: 5,
    layers: 'all',
    batchSize: 128,
    pretrainLr: 3e-3,
    finetuneLr: 3e-4,
    denoiserLr: 1e-3,
    denoiseWeight: 0.01,
    latencyRuns: quick ? 20 : 100,
  };
}

export interface DemoResult {
  dir: string;
  settings: DemoSettings;
  seeds: number[];
  /** Per seed: arm -> measurements. */
  runs: Record<string, ArmResult>[];
  summary: SummaryTable;
  verify: {
    seed: number;
    arm: string;
    report: Omit<VerifyReport, 'layers' | 'outputs'> & { maxRelError: number };
  }[];
  /** Per seed and fused arm: what fusion did to the layers (summary over layers). */
  diagnostics: ({ seed: number; arm: string } & DiagnosticsSummary)[];
  /** DenoiseRep~ latency relative to the baseline (median, batch 1), per seed. */
  tildeOverhead: number[];
  markdown: string;
}

function pretrainConfig(s: DemoSettings, seed: number, threads?: number): SupervisedConfig {
  return {
    epochs: s.pretrainEpochs,
    batchSize: s.batchSize,
    lr: s.pretrainLr,
    minLr: 1e-5,
    warmupEpochs: 0.5,
    weightDecay: 0.05,
    labelSmoothing: 0.1,
    seed,
    threads,
  };
}

/** Loads the baseline trained before in `runs/` with the same recipe, or trains it. */
async function baseline(
  def: ModelDef,
  train: ImageDataset,
  s: DemoSettings,
  seed: number,
  root: string,
  threads: number | undefined,
  log: (r: Record<string, unknown>) => void,
): Promise<ParamStore> {
  const name = (x: DemoSettings) =>
    join(
      root,
      'baselines',
      `${def.name}-n${x.trainImages}-e${x.pretrainEpochs}-lr${x.pretrainLr}-seed${seed}`,
    );
  const dir = name(s);
  const ck = join(dir, 'checkpoint');
  // A finished baseline of this recipe, or (for --quick) of the full recipe, is reused.
  const full = demoSettings(false);
  for (const [cand, epochs] of [
    [dir, s.pretrainEpochs],
    [name(full), full.pretrainEpochs],
  ] as const) {
    if (!existsSync(join(cand, 'checkpoint', 'state.json'))) continue;
    const c = loadCheckpoint(join(cand, 'checkpoint'));
    if (c.state.epoch === epochs - 1) {
      log({ kind: 'baseline', seed, reused: cand });
      return ParamStore.fromTensors(c.tensors);
    }
  }
  log({ kind: 'baseline', seed, training: dir });
  const res = await trainSupervised({
    def,
    train,
    config: pretrainConfig(s, seed, threads),
    outDir: dir,
    resume: existsSync(join(ck, 'state.json')),
    log: (r) => {
      if (r.kind === 'epoch') log({ stage: 'pretrain', seed, ...r });
    },
  });
  return res.store;
}

/** Features of a data set from an evaluation model's `feature` output. */
async function features(
  model: Model,
  data: ImageDataset,
  sessions: SessionCache,
  threads?: number,
): Promise<{ feats: Float32Array; dim: number }> {
  const s = await sessions.acquire(model, { threads });
  let feats: Float32Array | undefined;
  let dim = 0;
  let done = 0;
  try {
    for (const feeds of feedBatches(data, INPUT_NAME, 256)) {
      const f = (await s.run(feeds, [FEATURE_NAME]))[FEATURE_NAME]!;
      dim = f.dims[1]!;
      feats ??= new Float32Array(data.size * dim);
      feats.set(f.data as Float32Array, done * dim);
      done += f.dims[0]!;
    }
  } finally {
    await sessions.give(s);
  }
  return { feats: feats!, dim };
}

/**
 * The project's main experiment on the committed Fashion-MNIST subset: a ViT-tiny
 * baseline (trained, or reused from `runs/`), then for each seed five arms measured the
 * same way — the baseline, a control fine-tuned for the same extra epochs without
 * denoisers, DenoiseRep~ (feature-level denoiser, extra inference cost), label-free and
 * label-augmented DenoiseRep (fused: same graph) — plus fusion verification. Writes
 * `runs/<timestamp>/` (table.md, results.json, log.jsonl, fused models, denoisers).
 */
export async function runDemo(opts: {
  quick?: boolean;
  seeds?: number[];
  threads?: number;
  root?: string;
  settings?: Partial<DemoSettings>;
  onProgress?: (stage: string) => void;
}): Promise<DemoResult> {
  const s = { ...demoSettings(opts.quick ?? false), ...opts.settings };
  const seeds = opts.seeds ?? [0];
  const root = opts.root ?? 'runs';
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = join(root, stamp);
  mkdirSync(dir, { recursive: true });
  const log = (r: Record<string, unknown>) =>
    appendFileSync(join(dir, 'log.jsonl'), `${JSON.stringify(r)}\n`);
  const stage = (name: string) => {
    opts.onProgress?.(name);
    log({ kind: 'stage', stage: name, time: new Date().toISOString() });
  };
  const def = getPreset(s.preset);
  const fullTrain = await loadFashionMnist('embedded', 'train');
  const test = await loadFashionMnist('embedded', 'test');
  const train =
    s.trainImages < fullTrain.size
      ? subset(
          fullTrain,
          new Rng(0).fork('demo-subset').permutation(fullTrain.size).slice(0, s.trainImages).sort(),
        )
      : fullTrain;
  const threads = opts.threads;
  const runs: Record<string, ArmResult>[] = [];
  const verify: DemoResult['verify'] = [];
  const diagnostics: DemoResult['diagnostics'] = [];
  const tildeOverhead: number[] = [];
  const shape = def.inputShape;
  const testBatch = {
    [INPUT_NAME]: float32(
      [64, ...shape],
      gatherBatch(
        test,
        Int32Array.from({ length: 64 }, (_, i) => i),
      ).x,
    ),
  };
  // Each arm's model is evaluated, and the baseline's features taken: one compiled
  // session per model.
  const sessions = new SessionCache(8);
  const measure = async (model: Model): Promise<ArmResult> => {
    const e = await evaluateModel(model, test, { threads, sessions });
    const cost = modelCost(model);
    return {
      acc1: e.acc1,
      mAP: e.mAP,
      rank1: e.rank1,
      msPerImage: 0,
      params: cost.params,
      flops: cost.flops,
    };
  };

  for (const seed of seeds) {
    stage(`seed ${seed}: baseline`);
    const base = await baseline(def, train, s, seed, root, threads, log);
    const baseModel = evalModelWith(def, base);
    const arms: Record<string, ArmResult> = {};
    arms.baseline = await measure(baseModel);
    log({ kind: 'arm', seed, arm: 'baseline', ...arms.baseline });

    stage(`seed ${seed}: control (${s.extraEpochs} extra epochs, no denoisers)`);
    const ctl = await trainSupervised({
      def,
      train,
      init: base,
      config: {
        ...pretrainConfig(s, seed + 1000, threads),
        epochs: s.extraEpochs,
        lr: s.finetuneLr,
        warmupEpochs: 0,
      },
      log: (r) => r.kind === 'epoch' && log({ stage: 'control', seed, ...r }),
    });
    arms.control = await measure(ctl.model);
    log({ kind: 'arm', seed, arm: 'control', ...arms.control });

    stage(`seed ${seed}: DenoiseRep~`);
    const { feats, dim } = await features(baseModel, train, sessions, threads);
    const tcfg = { steps: s.tildeSteps };
    const tilde = await trainTilde({
      features: feats,
      dim,
      config: tcfg,
      epochs: 10,
      batchSize: 256,
      lr: 1e-3,
      seed,
      threads,
    });
    const tildeModel = attachTilde(baseModel, tilde.values, dim, tcfg);
    if (seed === seeds[0]) writeModel(join(dir, 'denoiserep-tilde.onnx'), tildeModel);
    arms['denoiserep~'] = await measure(tildeModel);
    log({ kind: 'arm', seed, arm: 'denoiserep~', ...arms['denoiserep~'] });

    stage(`seed ${seed}: label-free DenoiseRep`);
    const plan = planConversion(baseModel.graph, { filter: s.layers, source: def.name });
    const lf = await trainLabelFree({
      model: baseModel,
      plan,
      init: initDenoisers(plan, seed),
      data: train,
      config: { epochs: s.extraEpochs, batchSize: s.batchSize, lr: s.denoiserLr, seed, threads },
      log: (r) => r.kind === 'epoch' && log({ stage: 'label-free', seed, ...r }),
    });
    const lfModel = fuseModel(baseModel, plan, lf.values);
    arms['label-free'] = await measure(lfModel);
    log({ kind: 'arm', seed, arm: 'label-free', ...arms['label-free'] });

    // Beyond the paper: the MSE-optimal label-free denoisers in closed form (one pass of
    // input moments over the same training images), fused the same way.
    stage(`seed ${seed}: label-free DenoiseRep, closed form`);
    const stats = await collectMoments(baseModel, plan, feedBatches(train, INPUT_NAME, 256), {
      session: { threads },
    });
    const cf = fitClosedForm(plan, stats);
    const cfModel = fuseModel(baseModel, plan, cf.values);
    arms['label-free-cf'] = await measure(cfModel);
    log({ kind: 'arm', seed, arm: 'label-free-cf', ...arms['label-free-cf'] });

    stage(`seed ${seed}: label-augmented DenoiseRep`);
    const la = await trainLabelAugmented({
      def,
      backbone: base.clone(),
      plan,
      init: initDenoisers(plan, seed),
      data: train,
      filter: s.layers,
      config: {
        epochs: s.extraEpochs,
        phaseEpochs: 1,
        denoiseWeight: s.denoiseWeight,
        batchSize: s.batchSize,
        lr: s.denoiserLr,
        backboneLr: s.finetuneLr,
        weightDecay: 0.05,
        labelSmoothing: 0.1,
        seed,
        threads,
      },
      log: (r) => r.kind === 'epoch' && log({ stage: 'label-aug', seed, ...r }),
    });
    const laBase = evalModelWith(def, la.backbone);
    const laModel = fuseModel(laBase, plan, la.values);
    arms['label-aug'] = await measure(laModel);
    log({ kind: 'arm', seed, arm: 'label-aug', ...arms['label-aug'] });

    stage(`seed ${seed}: verify fusion`);
    const rng = new Rng(seed).fork('latency');
    const lfInit = initDenoisers(plan, seed);
    const lossSample = subset(
      train,
      Int32Array.from({ length: Math.min(512, train.size) }, (_, i) => i),
    );
    for (const [arm, original, fused, values, start] of [
      ['label-free', baseModel, lfModel, lf.values, lfInit],
      ['label-free-cf', baseModel, cfModel, cf.values, zeroDenoisers(cf.values)],
      ['label-aug', laBase, laModel, la.values, lfInit],
    ] as const) {
      const rep = await verifyFusion({
        original,
        fused,
        plan,
        denoisers: values,
        inputs: testBatch,
        threads,
        latencyRuns: s.latencyRuns,
        makeInputs: (n) => ({
          [INPUT_NAME]: float32(
            [n, ...shape],
            rng.fillUniform(new Float32Array(n * shape[0] * shape[1] * shape[2]), 0, 1),
          ),
        }),
      });
      const { layers, outputs, ...rest } = rep;
      verify.push({
        seed,
        arm,
        report: {
          ...rest,
          maxRelError: Math.max(...layers.map((l) => l.maxRel), ...outputs.map((o) => o.maxRel)),
        },
      });
      log({ kind: 'verify', seed, arm, ok: rep.ok, latency: rep.latency, failures: rep.failures });
      // What fusion did to each layer: spectrum of c3 I − c1 Wd, weight change, and the
      // denoising loss of the starting and the trained denoisers on the same noise draws.
      const lossOpts = { model: original, plan, data: lossSample, batchSize: 128, seed, threads };
      const layersReport = diagnoseFusion({
        plan,
        original,
        fused,
        denoisers: values,
        lossBefore: await measureDenoisingLoss({ ...lossOpts, values: start }),
        lossAfter: await measureDenoisingLoss({ ...lossOpts, values }),
      });
      diagnostics.push({ seed, arm, ...summarizeDiagnostics(layersReport) });
      if (seed === seeds[0]) {
        writeModel(join(dir, `${arm}.onnx`), fused);
        writeJsonAtomic(join(dir, `${arm}-diagnostics.json`), { arm, layers: layersReport });
        const svg = spectraSvg(layersReport, `${arm}: spectrum of c3·I − c1·Wd per layer`);
        writeFileAtomic(join(dir, `${arm}-spectra.svg`), svg);
        writeFileAtomic(join(dir, `${arm}-spectra.png`), await svgToPng(svg));
        writeDenoisers(join(dir, `${arm}-denoisers.safetensors`), plan, s.layers, values, {
          model: def.name,
          arm,
        });
      }
    }
    if (seed === seeds[0]) {
      writeModel(join(dir, 'baseline.onnx'), baseModel);
      // label-aug's unfused backbone: `denoiserep verify` checks label-aug.onnx against it.
      writeModel(join(dir, 'label-aug-backbone.onnx'), laBase);
    }
    // Latency of every arm, batch 1, interleaved so that load drift hits all alike.
    stage(`seed ${seed}: latency`);
    const one = {
      [INPUT_NAME]: float32(
        [1, ...shape],
        (testBatch[INPUT_NAME]!.data as Float32Array).slice(0, shape[0] * shape[1] * shape[2]),
      ),
    };
    const order = ARMS;
    const timed = [baseModel, ctl.model, tildeModel, lfModel, cfModel, laModel];
    const { ms } = await compareLatency(timed, one, {
      runs: latencyRunsFor(1, s.latencyRuns),
      threads,
    });
    order.forEach((arm, i) => {
      arms[arm]!.msPerImage = ms[i]!;
    });
    tildeOverhead.push(arms['denoiserep~']!.msPerImage / arms.baseline!.msPerImage);
    log({ kind: 'latency', seed, ms: Object.fromEntries(order.map((a, i) => [a, ms[i]])) });
    runs.push(arms);
    await sessions.clear();
  }
  const summary = summarizeArms(runs);
  const markdown = markdownTable(summary, seeds.length);
  const result: DemoResult = {
    dir,
    settings: s,
    seeds,
    runs,
    summary,
    verify,
    diagnostics,
    tildeOverhead,
    markdown,
  };
  writeFileAtomic(join(dir, 'table.md'), `${markdown}\n`);
  writeJsonAtomic(join(dir, 'results.json'), result);
  return result;
}
