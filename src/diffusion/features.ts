/**
 * Diffusion features (DDAE; "Diffusion Models Beat GANs on Image Classification"): the
 * activations of chosen U-Net blocks for an input noised to step t,
 * x_t = sqrt(abar_t) x + sqrt(1 − abar_t) eps, pooled over positions (the global mean,
 * for linear probes) or to a g x g grid (for attention probes). t = 0 feeds the clean
 * image. The noise of image i of a split is drawn from its own seeded stream, the same
 * for every t and block, so that a sweep compares noise levels on the same draws.
 */
import type { Schedule } from '../denoise/schedule.js';
import { gatherBatch, type ImageDataset } from '../data/dataset.js';
import type { ParamStore } from '../models/params.js';
import { INPUT_NAME } from '../models/types.js';
import { pooledName, tapName, TIMESTEP_NAME, unetModel } from '../models/unet-graph.js';
import type { UNetDef } from '../models/unet.js';
import { float32 } from '../onnx/tensor.js';
import { Session } from '../runtime/session.js';
import { DataError, UsageError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { noiseBatch, timestepInput, toDiffusionSpace } from './schedule.js';

/** Features of a data set: `n` rows of `dims` (flattened, row-major). */
export interface FeatureMatrix {
  /** Per-sample shape: [D] for pooled vectors, [C, g, g] for grids. */
  dims: number[];
  n: number;
  data: Float32Array;
}

/** How to pool a block's [C, h, w] map. */
export type Pooling = 'mean' | { grid: number };

/**
 * The noise eps of image `index` of the split `label` under `seed`: `per` N(0, 1) draws
 * from the stream `Rng(seed).fork('<label>:<index>')`.
 */
export function featureNoise(
  seed: number,
  label: string,
  index: number,
  per: number,
): Float32Array {
  return new Rng(seed).fork(`${label}:${index}`).fillNormal(new Float32Array(per));
}

/**
 * Adaptive average pooling of [n, C, h, w] maps to [n, C, g, g] (PyTorch's
 * adaptive_avg_pool2d: bin i covers rows floor(i·h/g) .. ceil((i+1)·h/g) − 1).
 */
export function adaptivePool(
  maps: Float32Array,
  n: number,
  c: number,
  h: number,
  w: number,
  g: number,
): Float32Array {
  if (!Number.isInteger(g) || g < 1 || g > h || g > w) {
    throw new UsageError(
      `--pool-grid must be an integer in 1..${Math.min(h, w)} (the block is ${h}x${w}), got ${g}`,
    );
  }
  const out = new Float32Array(n * c * g * g);
  const r0 = (i: number, len: number) => Math.floor((i * len) / g);
  const r1 = (i: number, len: number) => Math.ceil(((i + 1) * len) / g);
  let o = 0;
  for (let m = 0; m < n * c; m++) {
    const base = m * h * w;
    for (let i = 0; i < g; i++) {
      for (let j = 0; j < g; j++) {
        let s = 0;
        for (let y = r0(i, h); y < r1(i, h); y++) {
          for (let x = r0(j, w); x < r1(j, w); x++) s += maps[base + y * w + x]!;
        }
        out[o++] = s / ((r1(i, h) - r0(i, h)) * (r1(j, w) - r0(j, w)));
      }
    }
  }
  return out;
}

/**
 * Extracts block features from a trained U-Net, one session for many (t, split) passes.
 * @example
 * const fx = await FeatureExtractor.create(def, ema, ['down.2', 'mid'], 'mean', ddpmSchedule());
 * const feats = await fx.extract(train, 25, { seed: 0, label: 'train' }); // Map block -> FeatureMatrix
 * await fx.release();
 */
export class FeatureExtractor {
  private constructor(
    private readonly def: UNetDef,
    private readonly session: Session,
    readonly blocks: string[],
    readonly pooling: Pooling,
    private readonly schedule: Schedule,
    private readonly batchSize: number,
  ) {}

  /**
   * @param def - the U-Net
   * @param values - its weights (the EMA weights of a run)
   * @param blocks - blocks to tap ({@link UNetDef.blocks})
   * @param pooling - 'mean' or a grid
   * @param schedule - the forward process the model was trained on
   * @param opts - threads, images per run (default 256)
   */
  static async create(
    def: UNetDef,
    values: ParamStore,
    blocks: string[],
    pooling: Pooling,
    schedule: Schedule,
    opts: { threads?: number; batchSize?: number } = {},
  ): Promise<FeatureExtractor> {
    if (blocks.length === 0) throw new UsageError('no block to extract features from');
    const unknown = blocks.filter((b) => !def.blocks.includes(b));
    if (unknown.length) {
      throw new UsageError(
        `${def.name} has no block ${unknown.map((b) => `'${b}'`).join(', ')} (blocks: ${def.blocks.join(', ')})`,
      );
    }
    const model =
      pooling === 'mean'
        ? unetModel(def, values, { eps: false, pooled: blocks })
        : unetModel(def, values, { eps: false, taps: blocks });
    const session = await Session.create(model, { threads: opts.threads, source: def.name });
    return new FeatureExtractor(def, session, blocks, pooling, schedule, opts.batchSize ?? 256);
  }

  /**
   * Features of every image of `data` at step t (0 = clean) for each block.
   * @param data - images with pixels in [0, 1], of the U-Net's input shape
   * @param t - step in 0..T
   * @param opts.seed - noise seed; opts.label - the split's name in the noise streams
   */
  async extract(
    data: ImageDataset,
    t: number,
    opts: { seed: number; label: string; onBatch?: (done: number, total: number) => void },
  ): Promise<Map<string, FeatureMatrix>> {
    const [c, h, w] = this.def.inputShape;
    if (data.channels !== c || data.height !== h || data.width !== w) {
      throw new DataError(
        `${data.name} has ${data.channels}x${data.height}x${data.width} images, ${this.def.name} takes ${c}x${h}x${w}`,
      );
    }
    if (!Number.isInteger(t) || t < 0 || t > this.schedule.timesteps) {
      throw new UsageError(`--t must be an integer in 0..${this.schedule.timesteps}, got ${t}`);
    }
    const per = c * h * w;
    const out = new Map<string, FeatureMatrix>();
    const names = this.blocks.map((b) => (this.pooling === 'mean' ? pooledName(b) : tapName(b)));
    for (let s = 0; s < data.size; s += this.batchSize) {
      const m = Math.min(this.batchSize, data.size - s);
      const idx = Int32Array.from({ length: m }, (_, i) => s + i);
      const x0 = toDiffusionSpace(gatherBatch(data, idx).x);
      let xt = x0;
      if (t > 0) {
        const noise = new Float32Array(m * per);
        for (let i = 0; i < m; i++) {
          noise.set(featureNoise(opts.seed, opts.label, s + i, per), i * per);
        }
        xt = noiseBatch(x0, new Int32Array(m).fill(t), this.schedule, undefined, noise).xt;
      }
      const res = await this.session.run(
        {
          [INPUT_NAME]: float32([m, c, h, w], xt),
          [TIMESTEP_NAME]: float32([m], new Float32Array(m).fill(timestepInput(t))),
        },
        names,
      );
      this.blocks.forEach((block, k) => {
        const r = res[names[k]!]!;
        let dims = r.dims.slice(1);
        let vals = r.data as Float32Array;
        if (this.pooling !== 'mean') {
          const [bc, bh, bw] = dims as [number, number, number];
          const g = this.pooling.grid;
          vals = adaptivePool(vals, m, bc, bh, bw, g);
          dims = [bc, g, g];
        }
        let f = out.get(block);
        if (!f) {
          const size = dims.reduce((p, d) => p * d, 1);
          f = { dims, n: data.size, data: new Float32Array(data.size * size) };
          out.set(block, f);
        }
        f.data.set(vals, s * (f.data.length / data.size));
      });
      opts.onBatch?.(s + m, data.size);
    }
    return out;
  }

  /** Frees the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
