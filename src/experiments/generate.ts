/**
 * Generation and its quality: draw images from a trained U-Net, and measure the Fréchet
 * distance between generated and real test images in a supervised backbone's feature
 * space, next to the same distance between two halves of the real test set (the floor a
 * perfect generator would reach with as many samples).
 */
import type { ImageDataset } from '../data/dataset.js';
import { frechetDistance, gaussianStats, modelFeatures } from '../diffusion/frechet.js';
import { sampleImages, type SampleOptions, sessionPredictor } from '../diffusion/sampler.js';
import { ddpmSchedule, toPixels } from '../diffusion/schedule.js';
import type { ParamStore } from '../models/params.js';
import { unetModel } from '../models/unet-graph.js';
import type { UNetDef } from '../models/unet.js';
import type { Model } from '../onnx/ir.js';
import { UsageError } from '../util/errors.js';

/**
 * Draws `opts.n` images from a U-Net (DDPM or DDIM, seeded) as pixels in [0, 1].
 * @example
 * const px = await generateImages(def, ema, { n: 64, method: 'ddim', steps: 50, seed: 0 });
 */
export async function generateImages(
  def: UNetDef,
  values: ParamStore,
  opts: SampleOptions & { threads?: number },
): Promise<Float32Array> {
  const p = await sessionPredictor(unetModel(def, values), opts.threads);
  try {
    return toPixels(await sampleImages(p.predict, def.inputShape, ddpmSchedule(), opts));
  } finally {
    await p.release();
  }
}

/** Fréchet distances of a generated set and of the real floor. */
export interface FrechetReport {
  /** FD(generated, real half A). */
  fd: number;
  /** FD(real half B, real half A), with as many images of B as were generated (at most |B|). */
  floor: number;
  generated: number;
  /** Images in the real reference half A. */
  reference: number;
  /** Images of half B in the floor. */
  floorImages: number;
  featureDim: number;
}

/**
 * FD of generated images against the first half of the test set (A), and the floor: the
 * second half (B), cut to as many images as were generated, against A. Features are the
 * backbone's `feature` output.
 * @param backbone - evaluation graph (pixels in [0, 1] -> `feature`)
 * @param generated - pixels in [0, 1], NCHW
 * @param test - the real test set
 */
export async function frechetReport(
  backbone: Model,
  generated: Float32Array,
  test: ImageDataset,
  threads?: number,
): Promise<FrechetReport> {
  const shape: [number, number, number] = [test.channels, test.height, test.width];
  const per = shape[0] * shape[1] * shape[2];
  const n = generated.length / per;
  if (!Number.isInteger(n) || n < 2)
    throw new UsageError('the Fréchet distance needs at least 2 images');
  const half = Math.floor(test.size / 2);
  if (half < 2) throw new UsageError(`${test.name} is too small for two halves`);
  const floorN = Math.min(n, test.size - half);
  const feats = (x: Float32Array) => modelFeatures(backbone, x, shape, { threads });
  const a = await feats(test.images.subarray(0, half * per));
  const b = await feats(test.images.subarray(half * per, (half + floorN) * per));
  const g = await feats(generated);
  const sa = gaussianStats(a.data, a.n, a.dim);
  return {
    fd: frechetDistance(gaussianStats(g.data, g.n, g.dim), sa),
    floor: frechetDistance(gaussianStats(b.data, b.n, b.dim), sa),
    generated: n,
    reference: half,
    floorImages: floorN,
    featureDim: a.dim,
  };
}
