/**
 * Batch transforms on NCHW float32 tensors. A transform takes a batch, its shape and an Rng
 * and returns a new array (the input is not modified). Random transforms draw per image, in
 * image order, so a given seed gives the same augmented batch.
 *
 * The usual orders: classification `compose(randomCropWithPadding(4), horizontalFlip(0.5),
 * normalize(mean, std))`; ReID (TransReID) `compose(horizontalFlip(0.5), randomCropWithPadding(10),
 * normalize(mean, std), randomErasing({ p: 0.5, value: 'random' }))`.
 */
import { UsageError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';

/** Shape of an NCHW batch. */
export interface BatchShape {
  n: number;
  c: number;
  h: number;
  w: number;
}

/**
 * A batch transform. `outputShape` is present when the transform changes the shape
 * (resizing); {@link compose} uses it to pass the right shape to the next transform.
 */
export interface Transform {
  (x: Float32Array, shape: BatchShape, rng: Rng): Float32Array;
  outputShape?: (shape: BatchShape) => BatchShape;
}

function checkShape(x: Float32Array, s: BatchShape, who: string): void {
  if (x.length !== s.n * s.c * s.h * s.w) {
    throw new UsageError(
      `${who}: tensor has ${x.length} floats, shape ${s.n}×${s.c}×${s.h}×${s.w} needs ${s.n * s.c * s.h * s.w}`,
    );
  }
}

/**
 * Per-channel standardisation, `(x - mean[c]) / std[c]`.
 * @param mean - one value per channel.
 * @param std - one positive value per channel.
 * @example
 * const t = normalize([0.5], [0.5]); // maps [0, 1] to [-1, 1]
 */
export function normalize(mean: readonly number[], std: readonly number[]): Transform {
  if (mean.length !== std.length) {
    throw new UsageError(`normalize: mean has ${mean.length} values, std has ${std.length}`);
  }
  std.forEach((s, i) => {
    if (!(s > 0)) throw new UsageError(`normalize: std[${i}] = ${s} must be positive`);
  });
  return (x, shape) => {
    checkShape(x, shape, 'normalize');
    const { n, c, h, w } = shape;
    if (mean.length !== c)
      throw new UsageError(`normalize: ${mean.length} mean/std values for ${c} channels`);
    const hw = h * w;
    const out = new Float32Array(x.length);
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const m = mean[ch]!;
        const inv = 1 / std[ch]!;
        const base = (i * c + ch) * hw;
        for (let p = 0; p < hw; p++) out[base + p] = (x[base + p]! - m) * inv;
      }
    }
    return out;
  };
}

/**
 * Random crop after zero padding (torchvision `RandomCrop(size, padding=pad)`): each image
 * is padded by `pad` pixels of `fill` on every side, then an h×w window is taken at a
 * uniformly drawn offset in [0, 2·pad]², so the shape is unchanged. Apply it before
 * normalisation for the border to be black.
 * @param pad - padding in pixels (≥ 0).
 * @param fill - value of the padded border (default 0).
 * @example
 * const t = randomCropWithPadding(4); // CIFAR-style augmentation
 */
export function randomCropWithPadding(pad: number, fill = 0): Transform {
  if (!Number.isInteger(pad) || pad < 0)
    throw new UsageError(`randomCropWithPadding: pad must be an integer ≥ 0, got ${pad}`);
  return (x, shape, rng) => {
    checkShape(x, shape, 'randomCropWithPadding');
    const { n, c, h, w } = shape;
    const out = new Float32Array(x.length);
    for (let i = 0; i < n; i++) {
      // Window top-left in padded coordinates; source pixel = window pixel + offset − pad.
      const dy = rng.int(2 * pad + 1) - pad;
      const dx = rng.int(2 * pad + 1) - pad;
      for (let ch = 0; ch < c; ch++) {
        const base = (i * c + ch) * h * w;
        for (let y = 0; y < h; y++) {
          const sy = y + dy;
          for (let xx = 0; xx < w; xx++) {
            const sx = xx + dx;
            out[base + y * w + xx] =
              sy >= 0 && sy < h && sx >= 0 && sx < w ? x[base + sy * w + sx]! : fill;
          }
        }
      }
    }
    return out;
  };
}

/**
 * Mirrors each image left-right with probability `p`.
 * @param p - flip probability in [0, 1] (default 0.5).
 * @example
 * const t = horizontalFlip(0.5);
 */
export function horizontalFlip(p = 0.5): Transform {
  if (!(p >= 0 && p <= 1)) throw new UsageError(`horizontalFlip: p must be in [0, 1], got ${p}`);
  return (x, shape, rng) => {
    checkShape(x, shape, 'horizontalFlip');
    const { n, c, h, w } = shape;
    const out = new Float32Array(x);
    for (let i = 0; i < n; i++) {
      if (!(rng.uniform() < p)) continue;
      for (let ch = 0; ch < c; ch++) {
        for (let y = 0; y < h; y++) {
          const row = ((i * c + ch) * h + y) * w;
          for (let xx = 0; xx < w; xx++) out[row + xx] = x[row + w - 1 - xx]!;
        }
      }
    }
    return out;
  };
}

/** Options of {@link randomErasing}. */
export interface RandomErasingOptions {
  /** Probability of erasing one rectangle in an image (default 0.5). */
  p?: number;
  /** Range of the erased area as a fraction of the image area (default [0.02, 0.33]). */
  scale?: [number, number];
  /** Range of the rectangle's aspect ratio h/w, drawn log-uniformly (default [0.3, 3.3]). */
  ratio?: [number, number];
  /**
   * Fill: a constant, one value per channel, or `'random'` for N(0, 1) noise per pixel
   * (timm's `mode='pixel'`, used by TransReID after normalisation). Default 0.
   */
  value?: number | number[] | 'random';
}

/**
 * Random erasing (Zhong et al. 2020), as in the ReID recipe: with probability `p`, draw a
 * target area `s·H·W` with `s ~ U(scale)` and an aspect ratio `r` with `log r ~ U(log ratio)`,
 * take `eh = round(sqrt(s·H·W·r))`, `ew = round(sqrt(s·H·W/r))`, and if the rectangle fits
 * (`eh < H`, `ew < W`) fill it at a uniform position; up to 10 attempts per image, after
 * which the image is left unchanged (torchvision's rule).
 * @param opts - probability, area and aspect ranges, fill value.
 * @example
 * const t = randomErasing({ p: 0.5, value: 'random' });
 */
export function randomErasing(opts: RandomErasingOptions = {}): Transform {
  const p = opts.p ?? 0.5;
  const [s0, s1] = opts.scale ?? [0.02, 0.33];
  const [r0, r1] = opts.ratio ?? [0.3, 3.3];
  const value = opts.value ?? 0;
  if (!(p >= 0 && p <= 1)) throw new UsageError(`randomErasing: p must be in [0, 1], got ${p}`);
  if (!(s0 > 0 && s0 <= s1 && s1 <= 1))
    throw new UsageError(`randomErasing: scale [${s0}, ${s1}] must satisfy 0 < lo ≤ hi ≤ 1`);
  if (!(r0 > 0 && r0 <= r1))
    throw new UsageError(`randomErasing: ratio [${r0}, ${r1}] must satisfy 0 < lo ≤ hi`);
  const logR0 = Math.log(r0);
  const logR1 = Math.log(r1);
  return (x, shape, rng) => {
    checkShape(x, shape, 'randomErasing');
    const { n, c, h, w } = shape;
    if (Array.isArray(value) && value.length !== c) {
      throw new UsageError(`randomErasing: ${value.length} fill values for ${c} channels`);
    }
    const out = new Float32Array(x);
    for (let i = 0; i < n; i++) {
      if (!(rng.uniform() < p)) continue;
      for (let attempt = 0; attempt < 10; attempt++) {
        const area = h * w * rng.uniformRange(s0, s1);
        const r = Math.exp(rng.uniformRange(logR0, logR1));
        const eh = Math.round(Math.sqrt(area * r));
        const ew = Math.round(Math.sqrt(area / r));
        if (!(eh < h && ew < w) || eh === 0 || ew === 0) continue;
        const top = rng.int(h - eh + 1);
        const left = rng.int(w - ew + 1);
        for (let ch = 0; ch < c; ch++) {
          const base = (i * c + ch) * h * w;
          const v = typeof value === 'number' ? value : Array.isArray(value) ? value[ch]! : 0;
          for (let y = top; y < top + eh; y++) {
            for (let xx = left; xx < left + ew; xx++)
              out[base + y * w + xx] = value === 'random' ? rng.normal() : v;
          }
        }
        break;
      }
    }
    return out;
  };
}

/**
 * Bilinear resize of an NCHW tensor to `outH × outW`, with half-pixel centres (PyTorch
 * `interpolate(mode='bilinear', align_corners=False)`, no antialiasing): output pixel `o`
 * samples input coordinate `(o + 0.5)·in/out − 0.5`, clamped at 0, between its two
 * neighbours (the upper one clamped at the last pixel).
 * @param x - the batch.
 * @param shape - its shape.
 * @param outH - output height.
 * @param outW - output width.
 * @example
 * const y = resizeBilinear(x, { n: 8, c: 1, h: 28, w: 28 }, 32, 32);
 */
export function resizeBilinear(
  x: Float32Array,
  shape: BatchShape,
  outH: number,
  outW: number,
): Float32Array {
  checkShape(x, shape, 'resizeBilinear');
  if (!Number.isInteger(outH) || !Number.isInteger(outW) || outH <= 0 || outW <= 0) {
    throw new UsageError(`resizeBilinear: output size ${outH}×${outW} must be positive integers`);
  }
  const { n, c, h, w } = shape;
  const ys = axisWeights(h, outH);
  const xs = axisWeights(w, outW);
  const out = new Float32Array(n * c * outH * outW);
  for (let plane = 0; plane < n * c; plane++) {
    const src = plane * h * w;
    const dst = plane * outH * outW;
    for (let oy = 0; oy < outH; oy++) {
      const y0 = ys.i0[oy]!;
      const y1 = ys.i1[oy]!;
      const ly = ys.l[oy]!;
      for (let ox = 0; ox < outW; ox++) {
        const x0 = xs.i0[ox]!;
        const x1 = xs.i1[ox]!;
        const lx = xs.l[ox]!;
        const top = x[src + y0 * w + x0]! * (1 - lx) + x[src + y0 * w + x1]! * lx;
        const bot = x[src + y1 * w + x0]! * (1 - lx) + x[src + y1 * w + x1]! * lx;
        out[dst + oy * outW + ox] = top * (1 - ly) + bot * ly;
      }
    }
  }
  return out;
}

function axisWeights(
  inSize: number,
  outSize: number,
): { i0: Int32Array; i1: Int32Array; l: Float64Array } {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l = new Float64Array(outSize);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const src = Math.max((o + 0.5) * scale - 0.5, 0);
    const a = Math.min(Math.floor(src), inSize - 1);
    i0[o] = a;
    i1[o] = Math.min(a + 1, inSize - 1);
    l[o] = src - a;
  }
  return { i0, i1, l };
}

/**
 * A transform that resizes every image to `[outH, outW]` bilinearly (see {@link resizeBilinear}).
 * @param size - `[height, width]` of the output.
 * @example
 * const t = compose(resize([32, 32]), normalize([0.5], [0.5]));
 */
export function resize(size: [number, number]): Transform {
  const [outH, outW] = size;
  const t: Transform = (x, shape) => resizeBilinear(x, shape, outH, outW);
  t.outputShape = (s) => ({ ...s, h: outH, w: outW });
  return t;
}

/**
 * Applies transforms in order, passing each the shape produced by the previous one.
 * @param transforms - the transforms.
 * @example
 * const augment = compose(randomCropWithPadding(4), horizontalFlip(0.5), normalize([0.5], [0.5]));
 * const xb = augment(x, { n: 64, c: 1, h: 28, w: 28 }, rng);
 */
export function compose(...transforms: Transform[]): Transform {
  const t: Transform = (x, shape, rng) => {
    let s = shape;
    for (const f of transforms) {
      x = f(x, s, rng);
      if (f.outputShape) s = f.outputShape(s);
    }
    return x;
  };
  t.outputShape = (shape) =>
    transforms.reduce((s, f) => (f.outputShape ? f.outputShape(s) : s), shape);
  return t;
}
