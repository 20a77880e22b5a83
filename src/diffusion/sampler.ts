/**
 * Drawing images from a trained noise predictor: DDPM's ancestral sampler (Ho et al.
 * 2020, all T steps) and DDIM (Song et al. 2021, a subsequence of steps, eta = 0
 * deterministic). Both go through the model's prediction of x_0, clipped to [−1, 1] as in
 * Ho et al.'s code (`clip_denoised`), with eps recomputed from the clipped x_0.
 */
import type { Schedule } from '../denoise/schedule.js';
import { INPUT_NAME } from '../models/types.js';
import { EPS_NAME, TIMESTEP_NAME } from '../models/unet-graph.js';
import type { Model } from '../onnx/ir.js';
import { float32 } from '../onnx/tensor.js';
import { Session } from '../runtime/session.js';
import { UsageError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { timestepInput } from './schedule.js';

/**
 * A noise predictor: eps_θ(x_t, t) for a batch of `n` images at one step t (1..T), in the
 * diffusion space. The U-Net wrapped by {@link sessionPredictor}, or any function (tests
 * use the exact predictor of a known distribution).
 */
export type NoisePredictor = (xt: Float32Array, t: number, n: number) => Promise<Float32Array>;

/** How to sample. */
export interface SampleOptions {
  /** Number of images. */
  n: number;
  /** 'ddpm': ancestral, every step T..1; 'ddim': `steps` steps with `eta`. */
  method: 'ddpm' | 'ddim';
  /** DDIM: number of steps (default 50); DDPM: must be T if given. */
  steps?: number;
  /** DDIM: 0 deterministic (default), 1 the DDPM-like stochastic variant. */
  eta?: number;
  /** DDPM: posterior variance 'large' (beta_t, Ho et al.'s CIFAR-10 setting) or 'small' (beta-tilde_t). */
  variance?: 'large' | 'small';
  /** Clip the predicted x_0 to [−1, 1] (default true). */
  clip?: boolean;
  /** Seed: image i draws its x_T and every step's noise from its own stream. */
  seed: number;
  /** Images per predictor call (default 256); the result does not depend on it. */
  batchSize?: number;
  /** Called after each step with the number of steps done and their total. */
  onStep?: (done: number, total: number) => void;
}

/**
 * The DDIM step subsequence (1-based): t_i = 1 + floor(i·T / S) for i = 0..S−1, Song et
 * al.'s uniform spacing (0, T/S, 2T/S, ... in their 0-based steps). S = T gives 1..T.
 * @param timesteps - T
 * @param steps - S, 1..T
 */
export function ddimSteps(timesteps: number, steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > timesteps) {
    throw new UsageError(`--steps must be an integer in 1..${timesteps}, got ${steps}`);
  }
  return Array.from({ length: steps }, (_, i) => 1 + Math.floor((i * timesteps) / steps));
}

/**
 * Wraps an evaluation U-Net (inputs `input`, `timestep`; output `eps`) as a predictor.
 * Call `release()` when done.
 * @example
 * const p = await sessionPredictor(unetModel(def, ema), 2);
 * const x = await sampleImages(p.predict, [1, 28, 28], ddpmSchedule(), { n: 64, method: 'ddim', seed: 0 });
 * await p.release();
 */
export async function sessionPredictor(
  model: Model,
  threads?: number,
): Promise<{ predict: NoisePredictor; release: () => Promise<void> }> {
  const session = await Session.create(model, { threads, source: model.graph.name });
  const dims = model.graph.inputs.find((i) => i.name === INPUT_NAME)?.shape?.slice(1);
  if (!dims || dims.some((d) => typeof d !== 'number')) {
    await session.release();
    throw new UsageError(`${model.graph.name}: needs an input '${INPUT_NAME}' [N, C, H, W]`);
  }
  const [c, h, w] = dims as number[];
  return {
    predict: async (xt, t, n) => {
      const out = await session.run(
        {
          [INPUT_NAME]: float32([n, c!, h!, w!], xt),
          [TIMESTEP_NAME]: float32([n], new Float32Array(n).fill(timestepInput(t))),
        },
        [EPS_NAME],
      );
      return out[EPS_NAME]!.data as Float32Array;
    },
    release: () => session.release(),
  };
}

/**
 * Draws `opts.n` images of shape `shape` by running the reverse process with `predict`.
 * Arithmetic is float64 per element, stored as float32 between steps.
 * @param predict - the noise predictor
 * @param shape - [C, H, W] of one image
 * @param schedule - the forward process the predictor was trained on
 * @param opts - method, steps, eta, seed, batch size
 * @returns the images in the diffusion space ([−1, 1] when clipped), NCHW
 * @example
 * const x = await sampleImages(predict, [1, 28, 28], ddpmSchedule(), { n: 16, method: 'ddim', steps: 50, seed: 0 });
 */
export async function sampleImages(
  predict: NoisePredictor,
  shape: [number, number, number],
  schedule: Schedule,
  opts: SampleOptions,
): Promise<Float32Array> {
  const T = schedule.timesteps;
  if (!Number.isInteger(opts.n) || opts.n < 1) {
    throw new UsageError(`--n must be an integer >= 1, got ${opts.n}`);
  }
  let seq: number[];
  if (opts.method === 'ddpm') {
    if (opts.steps !== undefined && opts.steps !== T) {
      throw new UsageError(
        `DDPM sampling runs all ${T} steps (got --steps ${opts.steps}); use --method ddim for fewer`,
      );
    }
    seq = ddimSteps(T, T);
  } else if (opts.method === 'ddim') {
    seq = ddimSteps(T, opts.steps ?? 50);
  } else {
    throw new UsageError(`--method must be ddpm or ddim, got '${String(opts.method)}'`);
  }
  const eta = opts.eta ?? 0;
  if (!(eta >= 0 && Number.isFinite(eta))) throw new UsageError(`--eta must be >= 0, got ${eta}`);
  const per = shape[0] * shape[1] * shape[2];
  const bs = Math.max(1, Math.min(opts.batchSize ?? 256, opts.n));
  const out = new Float32Array(opts.n * per);
  const root = new Rng(opts.seed);
  const total = Math.ceil(opts.n / bs) * seq.length;
  let done = 0;
  for (let s = 0; s < opts.n; s += bs) {
    const m = Math.min(bs, opts.n - s);
    const rngs = Array.from({ length: m }, (_, i) => root.fork(`image-${s + i}`));
    let x: Float32Array = new Float32Array(m * per);
    rngs.forEach((r, i) => r.fillNormal(x.subarray(i * per, (i + 1) * per)));
    for (let k = seq.length - 1; k >= 0; k--) {
      const t = seq[k]!;
      const prev = k > 0 ? seq[k - 1]! : 0;
      const eps = await predict(x, t, m);
      if (eps.length !== x.length) {
        throw new UsageError(`the noise predictor returned ${eps.length} values for ${x.length}`);
      }
      x =
        opts.method === 'ddpm'
          ? ddpmStep(x, eps, t, schedule, opts, rngs, per)
          : ddimStep(x, eps, t, prev, eta, schedule, opts.clip ?? true, rngs, per);
      opts.onStep?.(++done, total);
    }
    out.set(x, s * per);
  }
  return out;
}

/** abar at step t (1-based), with abar_0 = 1. */
function alphaBar(schedule: Schedule, t: number): number {
  return t === 0 ? 1 : schedule.alphaBars[t - 1]!;
}

/** x̂_0 = (x_t − sqrt(1 − abar) eps) / sqrt(abar), optionally clipped to [−1, 1]. */
function predictX0(xt: number, eps: number, ab: number, clip: boolean): number {
  const x0 = (xt - Math.sqrt(1 - ab) * eps) / Math.sqrt(ab);
  return clip ? Math.min(1, Math.max(-1, x0)) : x0;
}

/**
 * One ancestral step t -> t − 1 through the posterior q(x_{t−1} | x_t, x̂_0):
 * mean = beta_t sqrt(abar_{t−1}) / (1 − abar_t) · x̂_0 + (1 − abar_{t−1}) sqrt(alpha_t) / (1 − abar_t) · x_t,
 * plus sigma_t z (z = 0 at t = 1), sigma_t² = beta_t ('large') or beta_t (1 − abar_{t−1}) / (1 − abar_t).
 */
function ddpmStep(
  x: Float32Array,
  eps: Float32Array,
  t: number,
  schedule: Schedule,
  opts: SampleOptions,
  rngs: Rng[],
  per: number,
): Float32Array {
  const ab = alphaBar(schedule, t);
  const abPrev = alphaBar(schedule, t - 1);
  const beta = schedule.betas[t - 1]!;
  const alpha = schedule.alphas[t - 1]!;
  const c0 = (beta * Math.sqrt(abPrev)) / (1 - ab);
  const ct = ((1 - abPrev) * Math.sqrt(alpha)) / (1 - ab);
  const variance = opts.variance === 'small' ? (beta * (1 - abPrev)) / (1 - ab) : beta;
  const sigma = t > 1 ? Math.sqrt(variance) : 0;
  const clip = opts.clip ?? true;
  const next = new Float32Array(x.length);
  for (let i = 0; i < rngs.length; i++) {
    const r = rngs[i]!;
    for (let k = i * per; k < (i + 1) * per; k++) {
      const x0 = predictX0(x[k]!, eps[k]!, ab, clip);
      next[k] = c0 * x0 + ct * x[k]! + (sigma > 0 ? sigma * r.normal() : 0);
    }
  }
  return next;
}

/**
 * One DDIM step t -> prev (Song et al., eq. 12):
 * x_prev = sqrt(abar_prev) x̂_0 + sqrt(1 − abar_prev − sigma²) ê + sigma z, with ê the
 * noise implied by the (clipped) x̂_0 and sigma = eta sqrt((1 − abar_prev) / (1 − abar_t))
 * sqrt(1 − abar_t / abar_prev).
 */
function ddimStep(
  x: Float32Array,
  eps: Float32Array,
  t: number,
  prev: number,
  eta: number,
  schedule: Schedule,
  clip: boolean,
  rngs: Rng[],
  per: number,
): Float32Array {
  const ab = alphaBar(schedule, t);
  const abPrev = alphaBar(schedule, prev);
  const sigma = eta * Math.sqrt((1 - abPrev) / (1 - ab)) * Math.sqrt(1 - ab / abPrev);
  const dirScale = Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma));
  const next = new Float32Array(x.length);
  for (let i = 0; i < rngs.length; i++) {
    const r = rngs[i]!;
    for (let k = i * per; k < (i + 1) * per; k++) {
      const x0 = predictX0(x[k]!, eps[k]!, ab, clip);
      const e = (x[k]! - Math.sqrt(ab) * x0) / Math.sqrt(1 - ab);
      next[k] = Math.sqrt(abPrev) * x0 + dirScale * e + (sigma > 0 ? sigma * r.normal() : 0);
    }
  }
  return next;
}
