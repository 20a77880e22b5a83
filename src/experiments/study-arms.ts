/**
 * The arms of the study, each with its control, built from the project's one pipeline
 * (fit, fuse) and one training loop (the label-augmented run and its compute-matched
 * control), scored and cached through the {@link StudyContext}.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MomentAccumulator } from '../denoise/closed-form.js';
import { fitClosedFormSweep, readMoments, writeMoments } from '../denoise/fit.js';
import { fuseModel } from '../denoise/fuse.js';
import { symmetricEigenvalues } from '../denoise/linalg.js';
import { collectStatistics, fitAndFuse } from '../denoise/pipeline.js';
import { type ConversionPlan, initDenoisers, planConversion } from '../denoise/plan.js';
import { type LabelAugConfig, trainLabelAugmented } from '../denoise/train.js';
import { INPUT_NAME } from '../models/types.js';
import type { Tensor } from '../onnx/tensor.js';
import { evalModelWith } from '../train/loop.js';
import { writeJsonAtomic } from '../util/atomic-write.js';
import { armCompute, type FusionCheck, NO_COMPUTE, type StudyContext } from './study-context.js';
import type { ArmCompute, LayerSpectrum, StudyResults, TrainingCurve } from './study-report.js';
import type { ArmInput, SweepInput } from './study-stats.js';

/** What running arms adds to the study. */
export interface ArmsOutput {
  arms: ArmInput[];
  compute: Record<string, (ArmCompute | null)[]>;
  curves: TrainingCurve[];
  verify: StudyResults['verify'];
  sweep: SweepInput[];
  spectra: StudyResults['spectra'];
}

/** An empty {@link ArmsOutput}. */
export function noArms(): ArmsOutput {
  return { arms: [], compute: {}, curves: [], verify: [], sweep: [], spectra: [] };
}

/** The baseline: the backbone itself, the same for every seed. */
export async function baselineArm(ctx: StudyContext, seeds: number[]): Promise<ArmsOutput> {
  const out = noArms();
  const scores = await ctx.score(ctx.unit('baseline', null), () => ctx.backbone.model);
  out.arms.push({
    name: 'baseline',
    control: null,
    seedDependent: false,
    scores: seeds.map(() => scores),
  });
  out.compute.baseline = seeds.map(() => NO_COMPUTE);
  return out;
}

/**
 * `label-free-cf` (the MSE-optimal label-free denoisers, fused; its control is the
 * baseline) and the sweep of the same fit over noise scales: one pass of input moments,
 * one eigendecomposition per layer, then every level.
 * @param plan - the layers, at the paper's betas
 * @param noiseScales - multiples of the paper's betas (1, the arm itself, is always fitted)
 */
export async function closedFormArms(
  ctx: StudyContext,
  plan: ConversionPlan,
  layers: string,
  seeds: number[],
  noiseScales: number[],
): Promise<ArmsOutput> {
  const out = noArms();
  const { backbone } = ctx;
  const stats = await moments(ctx, plan);
  const scales = [...new Set([1, ...noiseScales])].sort((a, b) => a - b);
  const plans = scales.map((k) =>
    planConversion(backbone.model.graph, {
      filter: layers,
      source: backbone.ref,
      schedule: { noiseScale: k },
    }),
  );
  // Fitted only when some level's scores are not cached.
  let values: Map<string, Tensor>[] | undefined;
  let variances: number[][] | undefined;
  for (const [i, k] of scales.entries()) {
    const unit = ctx.unit('label-free-cf', null, { noiseScale: k });
    const checkFile = join(ctx.dir, 'train', `${unit}.json`);
    const scores = await ctx.score(unit, async () => {
      values ??= fitClosedFormSweep(plans, stats).values;
      const fused = fuseModel(backbone.model, plans[i]!, values[i]!);
      writeJsonAtomic(checkFile, {
        verify: await ctx.verify(backbone.model, fused, plans[i]!, values[i]!),
      });
      return fused;
    });
    if (existsSync(checkFile)) {
      const check = JSON.parse(readFileSync(checkFile, 'utf8')) as { verify: FusionCheck };
      out.verify.push({ arm: `label-free-cf x${k}`, seed: seeds[0]!, ...check.verify });
    }
    if (k === 1) {
      out.arms.push({
        name: 'label-free-cf',
        control: 'baseline',
        seedDependent: false,
        scores: seeds.map(() => scores),
      });
      out.compute['label-free-cf'] = seeds.map(() => NO_COMPUTE);
    }
    if (noiseScales.includes(k)) {
      out.sweep.push({ noiseScale: k, scores });
      variances ??= layerVariances(plan, stats);
      out.spectra.push({ noiseScale: k, layers: layerSpectra(plans[i]!, variances) });
    }
  }
  return out;
}

/** The moments of every planned layer's input over the moment images (cached). */
async function moments(
  ctx: StudyContext,
  plan: ConversionPlan,
): Promise<Map<string, MomentAccumulator>> {
  const unit = ctx.unit('moments', null);
  const file = join(ctx.dir, 'train', `${unit}.bin`);
  if (existsSync(file)) {
    ctx.hit(`moments:${unit}`);
    return readMoments(file).stats;
  }
  const t0 = Date.now();
  const images = ctx.data.moments;
  ctx.progress(`input moments over ${images.size} images`);
  const stats = await collectStatistics(
    ctx.backbone.model,
    plan,
    { data: images, inputName: INPUT_NAME, batchSize: 256 },
    { threads: ctx.threads, source: ctx.backbone.ref },
  );
  writeMoments(file, plan, stats, { backbone: ctx.backbone.ref });
  ctx.done(`moments:${unit}`, (Date.now() - t0) / 1000);
  return stats;
}

/**
 * `label-free`: the paper's label-free training (backbone frozen, denoisers on the
 * noise-prediction loss), fused; its control is the baseline (neither takes a backbone step).
 */
export async function labelFreeArm(
  ctx: StudyContext,
  plan: ConversionPlan,
  seeds: number[],
  cfg: { epochs: number; lr: number; batchSize: number },
): Promise<ArmsOutput> {
  const out = noArms();
  const scores = [];
  out.compute['label-free'] = [];
  for (const seed of seeds) {
    const unit = ctx.unit('label-free', seed, cfg);
    const t = await ctx.trained(unit, async () => {
      const c = ctx.curve();
      const r = await fitAndFuse(
        ctx.backbone.model,
        plan,
        {
          kind: 'sgd',
          images: { data: ctx.data.train, inputName: INPUT_NAME, batchSize: cfg.batchSize },
          epochs: cfg.epochs,
          lr: cfg.lr,
          log: c.log,
        },
        { seed, threads: ctx.threads, source: ctx.backbone.ref },
      );
      return {
        model: r.fused,
        info: {
          compute: armCompute(r.compute!),
          curve: c.points,
          verify: await ctx.verify(r.original, r.fused, r.plan, r.values),
        },
      };
    });
    scores.push(await ctx.score(unit, t.model));
    out.compute['label-free'].push(t.info.compute);
    out.curves.push({ arm: 'label-free', seed, points: t.info.curve });
    if (t.info.verify) out.verify.push({ arm: 'label-free', seed, ...t.info.verify });
  }
  out.arms.push({ name: 'label-free', control: 'baseline', seedDependent: true, scores });
  return out;
}

/**
 * `label-aug` (alternating denoiser and backbone phases, the backbone trained through the
 * fused weights, fused) and `control`, the training loop's compute-matched control: the
 * same run with no denoisers and no denoising loss, so the same backbone steps, learning
 * rates, batches, order, augmentation and dropout draws.
 */
export async function labelAugArms(
  ctx: StudyContext,
  plan: ConversionPlan,
  layers: string,
  seeds: number[],
  config: Omit<LabelAugConfig, 'seed' | 'threads'>,
): Promise<ArmsOutput> {
  const out = noArms();
  const { backbone } = ctx;
  const arm = [];
  const ctl = [];
  out.compute['label-aug'] = [];
  out.compute.control = [];
  for (const seed of seeds) {
    const unitA = ctx.unit('label-aug', seed, config);
    const a = await ctx.trained(unitA, async () => {
      const c = ctx.curve();
      const r = await fitAndFuse(
        backbone.model,
        plan,
        {
          kind: 'label-aug',
          def: backbone.def,
          backbone: backbone.values.clone(),
          data: ctx.data.train,
          filter: layers,
          config,
          log: c.log,
        },
        { seed, threads: ctx.threads, source: backbone.ref },
      );
      return {
        model: r.fused,
        info: {
          compute: armCompute(r.compute!),
          curve: c.points,
          verify: await ctx.verify(r.original, r.fused, r.plan, r.values),
        },
      };
    });
    const unitC = ctx.unit('control', seed, config);
    const c = await ctx.trained(unitC, async () => {
      const cv = ctx.curve();
      const r = await trainLabelAugmented({
        def: backbone.def,
        backbone: backbone.values.clone(),
        plan,
        init: initDenoisers(plan, seed),
        data: ctx.data.train,
        filter: layers,
        config: { ...config, seed, threads: ctx.threads },
        control: true,
        log: cv.log,
      });
      return {
        model: evalModelWith(backbone.def, r.backbone),
        info: { compute: armCompute(r.compute), curve: cv.points, verify: null },
      };
    });
    arm.push(await ctx.score(unitA, a.model));
    ctl.push(await ctx.score(unitC, c.model));
    out.compute['label-aug'].push(a.info.compute);
    out.compute.control.push(c.info.compute);
    out.curves.push(
      { arm: 'label-aug', seed, points: a.info.curve },
      { arm: 'control', seed, points: c.info.curve },
    );
    if (a.info.verify) out.verify.push({ arm: 'label-aug', seed, ...a.info.verify });
  }
  out.arms.push({ name: 'control', control: null, seedDependent: true, scores: ctl });
  out.arms.push({ name: 'label-aug', control: 'control', seedDependent: true, scores: arm });
  return out;
}

/**
 * Per layer, the variances of its input directions: the eigenvalues of the covariance (of
 * the second moment for a layer without bias), ascending, at most 64 evenly spread in rank.
 */
function layerVariances(plan: ConversionPlan, stats: Map<string, MomentAccumulator>): number[][] {
  return plan.layers.map((p) => {
    const st = stats.get(p.layer.name)!;
    let acc = st;
    if (!p.affine) {
      acc = new MomentAccumulator(st.dim).merge(st);
      acc.sum.fill(0);
    }
    const lam = Array.from(symmetricEigenvalues(acc.covariance(), acc.dim), (v) => Math.max(0, v));
    const step = Math.max(1, Math.floor(lam.length / 64));
    return lam.filter((_, i) => i % step === 0 || i === lam.length - 1);
  });
}

/**
 * The gain of the fused closed-form map c3·I − c1·Wd along each input direction:
 * c3 − c1·s2 / (s1²λ + s2²), since Wd = s2 (s1² S + s2² I)⁻¹ shares S's eigenvectors.
 */
function layerSpectra(plan: ConversionPlan, variances: number[][]): LayerSpectrum[] {
  return plan.layers.map((p, i) => {
    const { c1, c3, s1, s2 } = p.coeffs;
    const v = variances[i]!;
    return {
      layer: p.layer.name,
      t: p.t,
      variances: v,
      gains: v.map((lam) => c3 - (c1 * s2) / (s1 * s1 * lam + s2 * s2)),
    };
  });
}
