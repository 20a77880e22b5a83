import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { feedBatches, gatherBatch, type ImageDataset, subset } from '../data/dataset.js';
import { loadFashionMnist } from '../data/fashion-mnist.js';
import { type DiagnosticsSummary, summarizeDiagnostics } from '../denoise/diagnostics.js';
import {
  checkFusion,
  fitAndFuse,
  type FusedDenoisers,
  type PipelineCommon,
  writePipelineFiles,
} from '../denoise/pipeline.js';
import { planConversion } from '../denoise/plan.js';
import { attachTilde, trainTilde } from '../denoise/tilde.js';
import type { VerifyReport } from '../denoise/verify.js';
import { evaluateModel, modelCost } from '../eval/evaluate.js';
import { compareLatency, latencyRunsFor } from '../eval/latency.js';
import { ParamStore } from '../models/params.js';
import { getPreset } from '../models/registry.js';
import { FEATURE_NAME, INPUT_NAME, type ModelDef } from '../models/types.js';
import type { Model } from '../onnx/ir.js';
import { writeModel } from '../onnx/serialize.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { SessionCache } from '../runtime/session-cache.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { evalModelWith, type SupervisedConfig, trainSupervised } from '../train/loop.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.js';
import { UsageError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { defaultBackbone, loadBackbone } from './backbone.js';
import { ARMS, type ArmResult, markdownTable, summarizeArms, type SummaryTable } from './table.js';

/** Settings of one demo run; `quick` shrinks every stage. */
export interface DemoSettings {
  /**
   * The trained backbone every arm starts from: `zoo:<preset>` (default: the shipped
   * `zoo:vit-tiny-fmnist` when the zoo has it, else its first entry) or a pretrain output
   * folder; null trains `preset` from scratch
   * on the subset (`pretrainEpochs` at `pretrainLr`), as `--from-scratch` does.
   */
  backbone: string | null;
  /** The preset trained from scratch (with a backbone: the backbone's preset). */
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
    backbone: defaultBackbone(),
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

/** Options of {@link runDemo}. */
export interface DemoOptions {
  quick?: boolean;
  seeds?: number[];
  threads?: number;
  /** Runs folder (default `runs`): the run goes to `<root>/<timestamp>/`, baselines to `<root>/baselines/`. */
  root?: string;
  settings?: Partial<DemoSettings>;
  onProgress?: (stage: string) => void;
}

/** What every stage of a demo run shares. */
interface DemoContext {
  s: DemoSettings;
  seeds: number[];
  root: string;
  dir: string;
  def: ModelDef;
  /** The backbone's reference, or null when each seed trains its own from scratch. */
  backbone: string | null;
  train: ImageDataset;
  test: ImageDataset;
  threads?: number;
  /** One compiled session per evaluated model. */
  sessions: SessionCache;
  /** The first 64 test images: the verification inputs. */
  testBatch: Record<string, Tensor>;
  log: (r: Record<string, unknown>) => void;
  stage: (name: string) => void;
}

/** What the seeds add up to. */
type DemoRecords = Pick<DemoResult, 'runs' | 'verify' | 'diagnostics' | 'tildeOverhead'>;

/** The fused arms of one seed, in table order. */
type FusedArms = Record<'label-free' | 'label-free-cf' | 'label-aug', FusedDenoisers>;

async function demoContext(opts: DemoOptions): Promise<DemoContext> {
  const s = { ...demoSettings(opts.quick ?? false), ...opts.settings };
  // A shipped or given backbone fixes the preset; it is loaded (and checked) before any work.
  if (s.backbone === '')
    throw new UsageError(
      'no backbone: the zoo has no entry; pass --backbone zoo:<preset> or a pretrain output folder, or --from-scratch',
    );
  const def = s.backbone !== null ? loadBackbone(s.backbone).def : getPreset(s.preset);
  s.preset = def.name;
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
  const fullTrain = await loadFashionMnist('embedded', 'train');
  const test = await loadFashionMnist('embedded', 'test');
  const train =
    s.trainImages < fullTrain.size
      ? subset(
          fullTrain,
          new Rng(0).fork('demo-subset').permutation(fullTrain.size).slice(0, s.trainImages).sort(),
        )
      : fullTrain;
  const testBatch = {
    [INPUT_NAME]: float32(
      [64, ...def.inputShape],
      gatherBatch(
        test,
        Int32Array.from({ length: 64 }, (_, i) => i),
      ).x,
    ),
  };
  return {
    s,
    seeds: opts.seeds ?? [0],
    root,
    dir,
    def,
    backbone: s.backbone,
    train,
    test,
    threads: opts.threads,
    sessions: new SessionCache(8),
    testBatch,
    log,
    stage,
  };
}

/** Accuracy and retrieval metrics of one arm's model, recorded and logged. */
async function measureArm(
  ctx: DemoContext,
  arms: Record<string, ArmResult>,
  seed: number,
  arm: string,
  model: Model,
): Promise<void> {
  const e = await evaluateModel(model, ctx.test, { threads: ctx.threads, sessions: ctx.sessions });
  const cost = modelCost(model);
  arms[arm] = {
    acc1: e.acc1,
    mAP: e.mAP,
    rank1: e.rank1,
    msPerImage: 0,
    params: cost.params,
    flops: cost.flops,
  };
  ctx.log({ kind: 'arm', seed, arm, ...arms[arm] });
}

/** The control: the same extra epochs without denoisers. */
async function controlArm(ctx: DemoContext, seed: number, base: ParamStore): Promise<Model> {
  const { s, def, train, threads } = ctx;
  ctx.stage(`seed ${seed}: control (${s.extraEpochs} extra epochs, no denoisers)`);
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
    log: (r) => r.kind === 'epoch' && ctx.log({ stage: 'control', seed, ...r }),
  });
  return ctl.model;
}

/** DenoiseRep~: a feature-level denoiser after the backbone, run for a few reverse steps. */
async function tildeArm(ctx: DemoContext, seed: number, baseModel: Model): Promise<Model> {
  ctx.stage(`seed ${seed}: DenoiseRep~`);
  const { feats, dim } = await features(baseModel, ctx.train, ctx.sessions, ctx.threads);
  const tcfg = { steps: ctx.s.tildeSteps };
  const tilde = await trainTilde({
    features: feats,
    dim,
    config: tcfg,
    epochs: 10,
    batchSize: 256,
    lr: 1e-3,
    seed,
    threads: ctx.threads,
  });
  const tildeModel = attachTilde(baseModel, tilde.values, dim, tcfg);
  if (seed === ctx.seeds[0]) writeModel(join(ctx.dir, 'denoiserep-tilde.onnx'), tildeModel);
  return tildeModel;
}

/**
 * The fused arms through the pipeline's first half: label-free (trained), label-free in
 * closed form (beyond the paper: the MSE-optimal denoisers from one pass of input moments)
 * and label-augmented; each measured as soon as it is fused.
 */
async function fusedArms(
  ctx: DemoContext,
  arms: Record<string, ArmResult>,
  seed: number,
  base: ParamStore,
  baseModel: Model,
): Promise<FusedArms> {
  const { s, def, train } = ctx;
  const common: PipelineCommon = { seed, threads: ctx.threads };
  const images = { data: train, inputName: INPUT_NAME, batchSize: s.batchSize };
  const logAs = (stage: string) => (r: Record<string, unknown>) =>
    r.kind === 'epoch' && ctx.log({ stage, seed, ...r });

  ctx.stage(`seed ${seed}: label-free DenoiseRep`);
  const plan = planConversion(baseModel.graph, { filter: s.layers, source: def.name });
  const lf = await fitAndFuse(
    baseModel,
    plan,
    { kind: 'sgd', images, epochs: s.extraEpochs, lr: s.denoiserLr, log: logAs('label-free') },
    common,
  );
  await measureArm(ctx, arms, seed, 'label-free', lf.fused);

  ctx.stage(`seed ${seed}: label-free DenoiseRep, closed form`);
  const cfImages = { ...images, batchSize: 256 };
  const cf = await fitAndFuse(baseModel, plan, { kind: 'closed-form', images: cfImages }, common);
  await measureArm(ctx, arms, seed, 'label-free-cf', cf.fused);

  ctx.stage(`seed ${seed}: label-augmented DenoiseRep`);
  const config = {
    epochs: s.extraEpochs,
    phaseEpochs: 1,
    denoiseWeight: s.denoiseWeight,
    batchSize: s.batchSize,
    lr: s.denoiserLr,
    backboneLr: s.finetuneLr,
    weightDecay: 0.05,
    labelSmoothing: 0.1,
  };
  const la = await fitAndFuse(
    baseModel,
    plan,
    {
      kind: 'label-aug',
      def,
      backbone: base.clone(),
      data: train,
      filter: s.layers,
      config,
      log: logAs('label-aug'),
    },
    common,
  );
  await measureArm(ctx, arms, seed, 'label-aug', la.fused);
  return { 'label-free': lf, 'label-free-cf': cf, 'label-aug': la };
}

/**
 * The pipeline's second half for each fused arm: verification against the unfused model,
 * then what fusion did to each layer (spectrum of c3 I − c1 Wd, weight change, and the
 * denoising loss of the starting and the fitted denoisers on the same noise draws); the
 * first seed's models, denoisers, diagnostics and spectra are written.
 */
async function checkArms(
  ctx: DemoContext,
  seed: number,
  fused: FusedArms,
  out: DemoRecords,
): Promise<void> {
  const { s, dir } = ctx;
  const shape = ctx.def.inputShape;
  const rng = new Rng(seed).fork('latency');
  const makeInputs = (n: number) => ({
    [INPUT_NAME]: float32(
      [n, ...shape],
      rng.fillUniform(new Float32Array(n * shape[0] * shape[1] * shape[2]), 0, 1),
    ),
  });
  for (const [arm, r] of Object.entries(fused)) {
    const checked = await checkFusion(
      r,
      {
        verify: { inputs: ctx.testBatch, latencyRuns: s.latencyRuns, makeInputs },
        losses: { data: ctx.train, batchSize: 128 },
      },
      { seed, threads: ctx.threads },
    );
    const rep = checked.verification!;
    const { layers, outputs, ...rest } = rep;
    const maxRelError = Math.max(...layers.map((l) => l.maxRel), ...outputs.map((o) => o.maxRel));
    out.verify.push({ seed, arm, report: { ...rest, maxRelError } });
    ctx.log({
      kind: 'verify',
      seed,
      arm,
      ok: rep.ok,
      latency: rep.latency,
      failures: rep.failures,
    });
    out.diagnostics.push({ seed, arm, ...summarizeDiagnostics(checked.layers) });
    if (seed !== ctx.seeds[0]) continue;
    await writePipelineFiles(r, checked, {
      model: join(dir, `${arm}.onnx`),
      diagnostics: {
        json: join(dir, `${arm}-diagnostics.json`),
        svg: join(dir, `${arm}-spectra.svg`),
        png: join(dir, `${arm}-spectra.png`),
        title: `${arm}: spectrum of c3·I − c1·Wd per layer`,
        content: (_r, c) => ({ arm, layers: c.layers }),
      },
      denoisers: {
        path: join(dir, `${arm}-denoisers.safetensors`),
        filter: s.layers,
        meta: { model: ctx.def.name, arm },
      },
    });
  }
}

/** Latency of every arm at batch 1, interleaved so that load drift hits all alike. */
async function timeArms(
  ctx: DemoContext,
  arms: Record<string, ArmResult>,
  seed: number,
  models: Model[],
): Promise<void> {
  ctx.stage(`seed ${seed}: latency`);
  const shape = ctx.def.inputShape;
  const n = shape[0] * shape[1] * shape[2];
  const one = {
    [INPUT_NAME]: float32(
      [1, ...shape],
      (ctx.testBatch[INPUT_NAME]!.data as Float32Array).slice(0, n),
    ),
  };
  const { ms } = await compareLatency(models, one, {
    runs: latencyRunsFor(1, ctx.s.latencyRuns),
    threads: ctx.threads,
  });
  ARMS.forEach((arm, i) => {
    arms[arm]!.msPerImage = ms[i]!;
  });
  ctx.log({ kind: 'latency', seed, ms: Object.fromEntries(ARMS.map((a, i) => [a, ms[i]])) });
}

/** One seed: every arm trained or fitted, measured, the fused ones verified, all timed. */
async function runSeed(ctx: DemoContext, seed: number, out: DemoRecords): Promise<void> {
  const { def, train, s, root, threads, log } = ctx;
  ctx.stage(`seed ${seed}: baseline`);
  // Each seed loads its own copy of a given backbone, so no arm can change another's start.
  const base = ctx.backbone
    ? loadBackbone(ctx.backbone).values
    : await baseline(def, train, s, seed, root, threads, log);
  if (ctx.backbone) log({ kind: 'baseline', seed, backbone: ctx.backbone });
  const baseModel = evalModelWith(def, base);
  const arms: Record<string, ArmResult> = {};
  await measureArm(ctx, arms, seed, 'baseline', baseModel);
  const control = await controlArm(ctx, seed, base);
  await measureArm(ctx, arms, seed, 'control', control);
  const tilde = await tildeArm(ctx, seed, baseModel);
  await measureArm(ctx, arms, seed, 'denoiserep~', tilde);
  const fused = await fusedArms(ctx, arms, seed, base, baseModel);

  ctx.stage(`seed ${seed}: verify fusion`);
  await checkArms(ctx, seed, fused, out);
  if (seed === ctx.seeds[0]) {
    writeModel(join(ctx.dir, 'baseline.onnx'), baseModel);
    // label-aug's unfused backbone: `denoiserep verify` checks label-aug.onnx against it.
    writeModel(join(ctx.dir, 'label-aug-backbone.onnx'), fused['label-aug'].original);
  }
  const models = [baseModel, control, tilde, ...Object.values(fused).map((f) => f.fused)];
  await timeArms(ctx, arms, seed, models);
  out.tildeOverhead.push(arms['denoiserep~']!.msPerImage / arms.baseline!.msPerImage);
  out.runs.push(arms);
  await ctx.sessions.clear();
}

/**
 * The project's main experiment on the committed Fashion-MNIST subset: a ViT-tiny
 * baseline (trained, or reused from `runs/`), then for each seed six arms measured the
 * same way — the baseline, a control fine-tuned for the same extra epochs without
 * denoisers, DenoiseRep~ (feature-level denoiser, extra inference cost), label-free
 * DenoiseRep trained and in closed form, and label-augmented DenoiseRep (fused: same
 * graph) — the fused arms through the one pipeline (`denoise/pipeline.ts`) and verified.
 * Writes `runs/<timestamp>/` (table.md, results.json, log.jsonl, fused models, denoisers).
 */
export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const ctx = await demoContext(opts);
  const out: DemoRecords = { runs: [], verify: [], diagnostics: [], tildeOverhead: [] };
  for (const seed of ctx.seeds) await runSeed(ctx, seed, out);
  const summary = summarizeArms(out.runs);
  const markdown = markdownTable(summary, ctx.seeds.length);
  const result: DemoResult = {
    dir: ctx.dir,
    settings: ctx.s,
    seeds: ctx.seeds,
    runs: out.runs,
    summary,
    verify: out.verify,
    diagnostics: out.diagnostics,
    tildeOverhead: out.tildeOverhead,
    markdown,
  };
  writeFileAtomic(join(ctx.dir, 'table.md'), `${markdown}\n`);
  writeJsonAtomic(join(ctx.dir, 'results.json'), result);
  return result;
}
