/**
 * The DDPM training objective (Ho et al.'s L_simple): for a clean batch x_0, uniform
 * steps t in 1..T and eps ~ N(0, I), the loss is mean ‖eps − eps_θ(x_t, t)‖² over every
 * element. x_t is formed in TypeScript (one multiply-add per element, seeded), so the
 * graph takes x_t, the timestep index and eps as inputs.
 */
import type { Schedule } from '../denoise/schedule.js';
import { INPUT_NAME } from '../models/types.js';
import { buildUNet, TIMESTEP_NAME, type UNetGraph } from '../models/unet-graph.js';
import type { UNetDef } from '../models/unet.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import type { Rng } from '../util/rng.js';
import { noiseBatch, timestepInput, toDiffusionSpace } from './schedule.js';

/** Graph input carrying the noise the U-Net must predict. */
export const NOISE_NAME = 'noise';
/** Output name of the DDPM loss. */
export const DDPM_LOSS_NAME = 'loss';

/**
 * The U-Net's training graph with the epsilon-prediction loss as output `loss`.
 * @param def - the U-Net
 * @param seed - parameter initialisation seed
 * @example
 * const g = ddpmTrainingGraph(getDiffusionPreset('ddpm-unet-micro'));
 * const built = g.b.build(); // inputs: input, timestep, noise (+ dropout masks)
 */
export function ddpmTrainingGraph(def: UNetDef, seed = 0): UNetGraph & { loss: string } {
  const g = buildUNet(def, 'train', seed);
  const { b } = g;
  const noise = b.input(NOISE_NAME, 'float32', ['N', ...def.inputShape]);
  const diff = b.sub(g.eps, noise);
  b.output(b.mean(b.mul(diff, diff)), DDPM_LOSS_NAME);
  return { ...g, loss: DDPM_LOSS_NAME };
}

/**
 * Feeds of one DDPM training step for a batch of pixels in [0, 1]: t uniform in 1..T and
 * eps ~ N(0, I), both drawn from `rng` (steps first, then noise).
 * @param pixels - NCHW batch, values in [0, 1]
 * @param shape - [n, C, H, W]
 * @param schedule - the DDPM schedule
 * @param rng - the step's random stream
 * @example
 * const feeds = ddpmFeeds(batch.x, [n, 1, 28, 28], ddpmSchedule(), rng.fork('noise'));
 */
export function ddpmFeeds(
  pixels: Float32Array,
  shape: [number, number, number, number],
  schedule: Schedule,
  rng: Rng,
): Record<string, Tensor> {
  const n = shape[0];
  const ts = new Int32Array(n);
  for (let i = 0; i < n; i++) ts[i] = 1 + rng.int(schedule.timesteps);
  const { xt, eps } = noiseBatch(toDiffusionSpace(pixels), ts, schedule, rng);
  return {
    [INPUT_NAME]: float32(shape, xt),
    [TIMESTEP_NAME]: float32([n], Float32Array.from(ts, timestepInput)),
    [NOISE_NAME]: float32(shape, eps),
  };
}
