/**
 * The DDPM forward process (Ho et al. 2020): linear betas from 1e-4 to 0.02 over T = 1000
 * steps (DenoiseRep's schedule with DDPM's beta_T), x_t = sqrt(abar_t) x_0 +
 * sqrt(1 − abar_t) eps for t = 1..T. Images live in [−1, 1] in the diffusion space.
 */
import { makeSchedule, type Schedule } from '../denoise/schedule.js';
import { UsageError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';

/** DDPM's beta_T. */
export const DDPM_BETA_END = 0.02;

/**
 * The DDPM schedule: T steps (default 1000), betas linear from 1e-4 to 0.02.
 * @example
 * const s = ddpmSchedule(); // s.alphaBars[999] ≈ 4.0e-5
 */
export function ddpmSchedule(timesteps = 1000): Schedule {
  return makeSchedule({ timesteps, betaStart: 1e-4, betaEnd: DDPM_BETA_END });
}

/** Pixels in [0, 1] to the diffusion space [−1, 1] (a new array). */
export function toDiffusionSpace(pixels: Float32Array): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < out.length; i++) out[i] = 2 * pixels[i]! - 1;
  return out;
}

/** The diffusion space back to pixels, clipped to [0, 1] (a new array). */
export function toPixels(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, (x[i]! + 1) / 2));
  return out;
}

/**
 * The network's timestep input for step t: DDPM's index t − 1 (so t = 1, the first noise
 * level, is fed as 0). t = 0 (a clean input, for features) is fed as 0 too.
 */
export function timestepInput(t: number): number {
  return Math.max(0, t - 1);
}

/**
 * Noises a batch in place of a copy: x_t = sqrt(abar_t) x_0 + sqrt(1 − abar_t) eps, with
 * eps drawn from `rng` (N(0, 1), one per element) unless given. t = 0 returns x_0 itself
 * (copied) and zero noise.
 * @param x0 - clean batch in the diffusion space, `per` values per image
 * @param ts - one step per image, each in 0..T
 * @param schedule - the forward process
 * @param rng - noise source (ignored when `noise` is given)
 * @param noise - the eps to use (same length as x0)
 * @returns x_t and the eps used
 * @example
 * const { xt, eps } = noiseBatch(x0, ts, ddpmSchedule(), rng);
 */
export function noiseBatch(
  x0: Float32Array,
  ts: ArrayLike<number>,
  schedule: Schedule,
  rng: Rng | undefined,
  noise?: Float32Array,
): { xt: Float32Array; eps: Float32Array } {
  const n = ts.length;
  if (n === 0 || x0.length % n !== 0) {
    throw new UsageError(`noiseBatch: ${x0.length} values do not split into ${n} images`);
  }
  const per = x0.length / n;
  let eps = noise;
  if (eps) {
    if (eps.length !== x0.length) {
      throw new UsageError(`noiseBatch: noise has ${eps.length} values, the batch ${x0.length}`);
    }
  } else {
    if (!rng) throw new UsageError('noiseBatch: needs an Rng or the noise');
    eps = rng.fillNormal(new Float32Array(x0.length));
  }
  const xt = new Float32Array(x0.length);
  for (let i = 0; i < n; i++) {
    const t = ts[i]!;
    if (!Number.isInteger(t) || t < 0 || t > schedule.timesteps) {
      throw new UsageError(`timestep ${t} is not an integer in 0..${schedule.timesteps}`);
    }
    const ab = t === 0 ? 1 : schedule.alphaBars[t - 1]!;
    const s1 = Math.sqrt(ab);
    const s2 = Math.sqrt(1 - ab);
    for (let k = i * per; k < (i + 1) * per; k++) xt[k] = s1 * x0[k]! + s2 * eps[k]!;
  }
  return { xt, eps };
}
