/**
 * Corrupted test sets in the style of MNIST-C and ImageNet-C (Hendrycks & Dietterich, 2019):
 * ten corruptions (four noises, two blurs, contrast, brightness, pixelation, JPEG), each at
 * five severities, applied to a test set deterministically.
 *
 * Determinism: every random draw of image `i` under corruption `k` comes from the stream
 * `new Rng(seed).fork(k).fork(i)`, so an image's corruption depends only on the seed, the
 * corruption and its index, never on which other images or severities are generated.
 * The streams do not depend on the severity either (common random numbers): severity s+1
 * uses the same noise field, impulse positions and blur direction as severity s with a
 * stronger parameter. That makes the severities ordered per image, not only on average.
 *
 * Levels: the pixel-wise corruptions (noises, contrast, brightness, JPEG quality) and the
 * pixelation factor take the levels of ImageNet-C's reference code, which do not depend on
 * the image size. The blurs are spatial: their levels are given in pixels of a 28-pixel
 * image (ImageNet-C's are for 224 pixels, and scaled by 1/8 they hardly blur at all) and
 * scaled with min(height, width) / 28 for other sizes.
 *
 * Outputs are clipped to [0, 1] and rounded to the 8-bit grid (multiples of 1/255), as the
 * published corrupted sets are stored as 8-bit images.
 */
import sharp from 'sharp';
import { DataError, UsageError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { checkDataset, type ImageDataset, imageLength } from './dataset.js';

/** The corruptions, in the order of the reports. */
export const CORRUPTION_NAMES = [
  'gaussian-noise',
  'shot-noise',
  'impulse-noise',
  'speckle-noise',
  'gaussian-blur',
  'motion-blur',
  'contrast',
  'brightness',
  'pixelate',
  'jpeg',
] as const;

export type CorruptionName = (typeof CORRUPTION_NAMES)[number];

/** Severities 1 (mildest) to 5. */
export const SEVERITIES = [1, 2, 3, 4, 5] as const;

/** One corruption: its family, its five levels and what a level means. */
export interface CorruptionSpec {
  name: CorruptionName;
  family: 'noise' | 'blur' | 'digital';
  /** The parameter at severities 1..5. */
  levels: readonly [number, number, number, number, number];
  /** What the parameter is. */
  parameter: string;
}

/** Every corruption's levels (see the module comment for where they come from). */
export const CORRUPTIONS: Readonly<Record<CorruptionName, CorruptionSpec>> = {
  'gaussian-noise': {
    name: 'gaussian-noise',
    family: 'noise',
    levels: [0.08, 0.12, 0.18, 0.26, 0.38],
    parameter: 'std of additive N(0, σ²) noise',
  },
  'shot-noise': {
    name: 'shot-noise',
    family: 'noise',
    levels: [60, 25, 12, 5, 3],
    parameter: 'photons at full intensity λ: x → Poisson(λ x) / λ',
  },
  'impulse-noise': {
    name: 'impulse-noise',
    family: 'noise',
    levels: [0.03, 0.06, 0.09, 0.17, 0.27],
    parameter: 'fraction of values set to 0 or 1 (salt and pepper, half each)',
  },
  'speckle-noise': {
    name: 'speckle-noise',
    family: 'noise',
    levels: [0.15, 0.2, 0.35, 0.45, 0.6],
    parameter: 'std of multiplicative noise: x → x + x·N(0, σ²)',
  },
  'gaussian-blur': {
    name: 'gaussian-blur',
    family: 'blur',
    levels: [0.5, 0.75, 1, 1.5, 2],
    parameter: 'Gaussian std in pixels of a 28-pixel image',
  },
  'motion-blur': {
    name: 'motion-blur',
    family: 'blur',
    levels: [0.75, 1.25, 2, 3, 4],
    parameter:
      'std in pixels (of a 28-pixel image) of a one-sided Gaussian trail at a random angle in ±45°',
  },
  contrast: {
    name: 'contrast',
    family: 'digital',
    levels: [0.4, 0.3, 0.2, 0.1, 0.05],
    parameter: 'factor c: x → (x − m)·c + m, m the image mean per channel',
  },
  brightness: {
    name: 'brightness',
    family: 'digital',
    levels: [0.1, 0.2, 0.3, 0.4, 0.5],
    parameter: 'added to the HSV value (grey: to the intensity), clipped at 1',
  },
  pixelate: {
    name: 'pixelate',
    family: 'digital',
    levels: [0.6, 0.5, 0.4, 0.3, 0.25],
    parameter: 'size factor: area-average down to factor × size, nearest back up',
  },
  jpeg: {
    name: 'jpeg',
    family: 'digital',
    levels: [25, 18, 15, 10, 7],
    parameter: 'JPEG quality (encoded and decoded with sharp)',
  },
};

/**
 * Checks a list of corruption names (for flags such as `--corruptions`).
 * @param names - names to check; `'all'` as the only entry means every corruption
 * @example parseCorruptions(['jpeg', 'contrast']);
 */
export function parseCorruptions(names: readonly string[]): CorruptionName[] {
  if (names.length === 1 && names[0] === 'all') return [...CORRUPTION_NAMES];
  const out: CorruptionName[] = [];
  for (const n of names) {
    if (!(CORRUPTION_NAMES as readonly string[]).includes(n)) {
      throw new UsageError(`unknown corruption '${n}' (known: ${CORRUPTION_NAMES.join(', ')})`);
    }
    if (out.includes(n as CorruptionName)) throw new UsageError(`corruption '${n}' given twice`);
    out.push(n as CorruptionName);
  }
  if (out.length === 0) throw new UsageError('no corruption given');
  return out;
}

function checkSeverity(severity: number): void {
  if (!Number.isInteger(severity) || severity < 1 || severity > 5)
    throw new UsageError(`corruption severity must be an integer in 1..5, got ${severity}`);
}

/** Shape of one image: channels, height, width. */
interface ImageShape {
  c: number;
  h: number;
  w: number;
}

/**
 * A Poisson(λ) draw by inversion of the CDF at `u` (one uniform per draw, so the same `u`
 * gives a count that grows with λ). Exact while exp(−λ) is a normal float64 (λ < 700).
 */
function poissonInverse(u: number, lambda: number): number {
  if (lambda <= 0) return 0;
  let p = Math.exp(-lambda);
  let cdf = p;
  let k = 0;
  // The tail beyond λ + 40√λ + 40 has probability far below float64 resolution.
  const kMax = Math.ceil(lambda + 40 * Math.sqrt(lambda) + 40);
  while (u > cdf && k < kMax) {
    k++;
    p *= lambda / k;
    cdf += p;
  }
  return k;
}

/** 1-D Gaussian weights over offsets −r..r, normalised to sum 1. */
function gaussianKernel(sigma: number): Float64Array {
  const r = Math.max(1, Math.ceil(4 * sigma)); // scipy's truncate = 4
  const k = new Float64Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i]! /= s;
  return k;
}

/** Separable Gaussian blur of one CHW image, edges clamped (skimage's 'nearest'). */
function gaussianBlur(x: Float32Array, { c, h, w }: ImageShape, sigma: number): Float32Array {
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const tmp = new Float64Array(h * w);
  const out = new Float32Array(x.length);
  for (let ch = 0; ch < c; ch++) {
    const off = ch * h * w;
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let s = 0;
        for (let j = -r; j <= r; j++) {
          const xi = Math.min(w - 1, Math.max(0, xx + j));
          s += k[j + r]! * x[off + y * w + xi]!;
        }
        tmp[y * w + xx] = s;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let s = 0;
        for (let j = -r; j <= r; j++) {
          const yi = Math.min(h - 1, Math.max(0, y + j));
          s += k[j + r]! * tmp[yi * w + xx]!;
        }
        out[off + y * w + xx] = s;
      }
    }
  }
  return out;
}

/** Bilinear sample of channel plane `off` at (y, x), coordinates clamped to the image. */
function sampleBilinear(
  x: Float32Array,
  off: number,
  h: number,
  w: number,
  y: number,
  xx: number,
): number {
  const yc = Math.min(h - 1, Math.max(0, y));
  const xc = Math.min(w - 1, Math.max(0, xx));
  const y0 = Math.floor(yc);
  const x0 = Math.floor(xc);
  const y1 = Math.min(h - 1, y0 + 1);
  const x1 = Math.min(w - 1, x0 + 1);
  const ly = yc - y0;
  const lx = xc - x0;
  const top = x[off + y0 * w + x0]! * (1 - lx) + x[off + y0 * w + x1]! * lx;
  const bot = x[off + y1 * w + x0]! * (1 - lx) + x[off + y1 * w + x1]! * lx;
  return top * (1 - ly) + bot * ly;
}

/**
 * Motion blur as ImageMagick draws it (ImageNet-C uses Wand's motion_blur): each output
 * pixel averages the image along a one-sided trail p, p − d, p − 2d, ... (d a unit step at
 * `angle`) with Gaussian weights exp(−k²/2σ²) over k = 0..⌈3σ⌉, sampled bilinearly.
 */
function motionBlur(
  x: Float32Array,
  { c, h, w }: ImageShape,
  sigma: number,
  angle: number,
): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const wts = Float64Array.from({ length: r + 1 }, (_, k) => Math.exp(-(k * k) / (2 * sigma ** 2)));
  const total = wts.reduce((a, b) => a + b, 0);
  const dx = Math.cos(angle);
  const dy = Math.sin(angle);
  const out = new Float32Array(x.length);
  for (let ch = 0; ch < c; ch++) {
    const off = ch * h * w;
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let s = 0;
        for (let k = 0; k <= r; k++) s += wts[k]! * sampleBilinear(x, off, h, w, y - k * dy, xx - k * dx);
        out[off + y * w + xx] = s / total;
      }
    }
  }
  return out;
}

/**
 * Pixelation: the image is area-averaged down to round(factor·h) × round(factor·w) (each
 * small pixel the exact, fractional-coverage mean of the input area it spans, PIL's BOX
 * filter) and brought back by nearest neighbour.
 */
function pixelate(x: Float32Array, { c, h, w }: ImageShape, factor: number): Float32Array {
  const sh = Math.max(1, Math.round(factor * h));
  const sw = Math.max(1, Math.round(factor * w));
  // Coverage of input index i by small cell j along one axis.
  const coverage = (n: number, m: number): Float64Array => {
    const cov = new Float64Array(m * n);
    const step = n / m;
    for (let j = 0; j < m; j++) {
      const a = j * step;
      const b = (j + 1) * step;
      for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) {
        cov[j * n + i] = (Math.min(b, i + 1) - Math.max(a, i)) / step;
      }
    }
    return cov;
  };
  const cy = coverage(h, sh);
  const cx = coverage(w, sw);
  const out = new Float32Array(x.length);
  const small = new Float64Array(sh * sw);
  for (let ch = 0; ch < c; ch++) {
    const off = ch * h * w;
    small.fill(0);
    for (let j = 0; j < sh; j++) {
      for (let i = 0; i < h; i++) {
        const wy = cy[j * h + i]!;
        if (wy === 0) continue;
        for (let k = 0; k < sw; k++) {
          let s = 0;
          for (let l = 0; l < w; l++) s += cx[k * w + l]! * x[off + i * w + l]!;
          small[j * sw + k]! += wy * s;
        }
      }
    }
    for (let y = 0; y < h; y++) {
      const j = Math.min(sh - 1, Math.floor(((y + 0.5) * sh) / h));
      for (let xx = 0; xx < w; xx++) {
        const k = Math.min(sw - 1, Math.floor(((xx + 0.5) * sw) / w));
        out[off + y * w + xx] = small[j * sw + k]!;
      }
    }
  }
  return out;
}

/** JPEG round trip through sharp at a quality, on 8-bit pixels. */
async function jpegRoundTrip(
  x: Float32Array,
  { c, h, w }: ImageShape,
  quality: number,
  name: string,
): Promise<Float32Array> {
  if (c !== 1 && c !== 3) throw new DataError(`${name}: JPEG needs 1 or 3 channels, got ${c}`);
  const hw = h * w;
  const hwc = Buffer.alloc(hw * c);
  for (let p = 0; p < hw; p++) {
    for (let ch = 0; ch < c; ch++)
      hwc[p * c + ch] = Math.round(255 * Math.min(1, Math.max(0, x[ch * hw + p]!)));
  }
  const jpg = await sharp(hwc, { raw: { width: w, height: h, channels: c } })
    .jpeg({ quality })
    .toBuffer();
  // A grey JPEG decodes to three equal channels; keep the first.
  let dec = sharp(jpg);
  if (c === 1) dec = dec.extractChannel(0);
  const { data, info } = await dec.raw().toBuffer({ resolveWithObject: true });
  if (info.width !== w || info.height !== h || info.channels < c) {
    throw new DataError(`${name}: JPEG decoded to ${info.width}×${info.height}×${info.channels}`);
  }
  const out = new Float32Array(x.length);
  for (let p = 0; p < hw; p++) {
    for (let ch = 0; ch < c; ch++) out[ch * hw + p] = data[p * info.channels + ch]! / 255;
  }
  return out;
}

/**
 * JPEG round trip of many grey images at once, with the same pixels as one call per image.
 * Each image sits in its own cell of a grid, padded to a multiple of 8 pixels by repeating
 * its last row and column, which is what the encoder does to a lone image whose size is
 * not a multiple of 8. A grey JPEG codes each 8×8 block on its own (the DCT, the
 * quantisation and the inverse DCT see only that block; only the entropy coding of the DC
 * terms links blocks, losslessly), so no cell influences another.
 */
async function jpegGreyTiled(
  x: Float32Array,
  n: number,
  h: number,
  w: number,
  quality: number,
): Promise<Float32Array> {
  const ch = Math.ceil(h / 8) * 8;
  const cw = Math.ceil(w / 8) * 8;
  const cols = Math.min(n, 16);
  const rows = Math.ceil(n / cols);
  const W = cols * cw;
  const grid = Buffer.alloc(rows * ch * W);
  for (let k = 0; k < n; k++) {
    const oy = Math.floor(k / cols) * ch;
    const ox = (k % cols) * cw;
    for (let y = 0; y < ch; y++) {
      const sy = Math.min(y, h - 1);
      for (let xx = 0; xx < cw; xx++) {
        const v = x[k * h * w + sy * w + Math.min(xx, w - 1)]!;
        grid[(oy + y) * W + ox + xx] = Math.round(255 * Math.min(1, Math.max(0, v)));
      }
    }
  }
  const jpg = await sharp(grid, { raw: { width: W, height: rows * ch, channels: 1 } })
    .jpeg({ quality })
    .toBuffer();
  const { data, info } = await sharp(jpg)
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const out = new Float32Array(n * h * w);
  for (let k = 0; k < n; k++) {
    const oy = Math.floor(k / cols) * ch;
    const ox = (k % cols) * cw;
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++)
        out[k * h * w + y * w + xx] = data[(oy + y) * info.width * info.channels + (ox + xx) * info.channels]! / 255;
    }
  }
  return out;
}

/**
 * Corrupts one CHW image (values in [0, 1]).
 * @param image - the image; not modified
 * @param shape - channels, height, width
 * @param name - the corruption
 * @param severity - 1..5
 * @param rng - the image's own stream (see the module comment)
 * @returns a new image, clipped to [0, 1] and rounded to multiples of 1/255
 * @example
 * const y = await corruptImage(x, { c: 1, h: 28, w: 28 }, 'contrast', 3, new Rng(0));
 */
export async function corruptImage(
  image: Float32Array,
  shape: ImageShape,
  name: CorruptionName,
  severity: number,
  rng: Rng,
): Promise<Float32Array> {
  checkSeverity(severity);
  const spec = CORRUPTIONS[name];
  if (!spec) throw new UsageError(`unknown corruption '${String(name)}'`);
  const { c, h, w } = shape;
  if (image.length !== c * h * w)
    throw new DataError(`${name}: image has ${image.length} values, expected ${c}×${h}×${w}`);
  const level = spec.levels[severity - 1]!;
  const spatial = Math.min(h, w) / 28;
  const n = image.length;
  let y: Float32Array;
  switch (name) {
    case 'gaussian-noise':
      y = Float32Array.from(image, (v) => v + level * rng.normal());
      break;
    case 'shot-noise':
      y = Float32Array.from(image, (v) => poissonInverse(rng.uniform(), level * Math.max(0, v)) / level);
      break;
    case 'impulse-noise': {
      y = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        // Two draws per value whatever the level: the same positions stay hit as it grows.
        const hit = rng.uniform();
        const salt = rng.uniform() < 0.5;
        y[i] = hit < level ? (salt ? 1 : 0) : image[i]!;
      }
      break;
    }
    case 'speckle-noise':
      y = Float32Array.from(image, (v) => v + v * level * rng.normal());
      break;
    case 'gaussian-blur':
      y = gaussianBlur(image, shape, level * spatial);
      break;
    case 'motion-blur':
      y = motionBlur(image, shape, level * spatial, ((rng.uniform() * 90 - 45) * Math.PI) / 180);
      break;
    case 'contrast': {
      y = new Float32Array(n);
      const hw = h * w;
      for (let ch = 0; ch < c; ch++) {
        let m = 0;
        for (let p = 0; p < hw; p++) m += image[ch * hw + p]!;
        m /= hw;
        for (let p = 0; p < hw; p++) y[ch * hw + p] = (image[ch * hw + p]! - m) * level + m;
      }
      break;
    }
    case 'brightness': {
      y = new Float32Array(n);
      const hw = h * w;
      if (c === 3) {
        // HSV: each channel is V·(1 − s·f(hue)); raising V to V' keeps hue and saturation,
        // so every channel scales by V'/V (a black pixel becomes grey V').
        for (let p = 0; p < hw; p++) {
          const v = Math.max(image[p]!, image[hw + p]!, image[2 * hw + p]!);
          const v2 = Math.min(1, v + level);
          for (let ch = 0; ch < 3; ch++)
            y[ch * hw + p] = v > 0 ? (image[ch * hw + p]! * v2) / v : v2;
        }
      } else {
        for (let i = 0; i < n; i++) y[i] = image[i]! + level;
      }
      break;
    }
    case 'pixelate':
      y = pixelate(image, shape, level);
      break;
    case 'jpeg':
      y = await jpegRoundTrip(image, shape, level, name);
      break;
  }
  for (let i = 0; i < n; i++) y[i] = Math.round(255 * Math.min(1, Math.max(0, y[i]!))) / 255;
  return y;
}

/**
 * A corrupted copy of a data set: every image corrupted by `name` at `severity`, labels
 * (and cameras, file names) kept. Image `i` draws from `new Rng(seed).fork(name).fork(i)`.
 * @param ds - the clean test set (pixels in [0, 1])
 * @param name - the corruption
 * @param severity - 1..5
 * @param seed - seed of every draw (default 0)
 * @example
 * const foggy = await corruptDataset(test, 'gaussian-noise', 3, 0);
 */
export async function corruptDataset(
  ds: ImageDataset,
  name: CorruptionName,
  severity: number,
  seed = 0,
): Promise<ImageDataset> {
  checkDataset(ds);
  checkSeverity(severity);
  if (!(name in CORRUPTIONS)) parseCorruptions([name]);
  const per = imageLength(ds);
  const shape = { c: ds.channels, h: ds.height, w: ds.width };
  const base = new Rng(seed).fork(name);
  const images = new Float32Array(ds.images.length);
  if (name === 'jpeg' && ds.channels === 1) {
    // One sharp call per image costs about 2 ms of overhead; tiles of 256 cost little more
    // than one (and give the same pixels, see jpegGreyTiled).
    for (let start = 0; start < ds.size; start += 256) {
      const n = Math.min(256, ds.size - start);
      const out = await jpegGreyTiled(
        ds.images.subarray(start * per, (start + n) * per),
        n,
        ds.height,
        ds.width,
        CORRUPTIONS.jpeg.levels[severity - 1]!,
      );
      images.set(out, start * per);
    }
  } else {
    for (let i = 0; i < ds.size; i++) {
      const img = ds.images.subarray(i * per, (i + 1) * per);
      images.set(await corruptImage(img, shape, name, severity, base.fork(i)), i * per);
    }
  }
  return {
    ...ds,
    name: `${ds.name}-c/${name}/${severity}`,
    images,
    labels: ds.labels.slice(),
    ...(ds.cameras ? { cameras: ds.cameras.slice() } : {}),
    ...(ds.files ? { files: ds.files.slice() } : {}),
  };
}

/** One corrupted split of a test set. */
export interface CorruptedSplit {
  corruption: CorruptionName;
  severity: number;
  data: ImageDataset;
}

/**
 * The corrupted test set, one split at a time (a split of the full 10,000-image
 * Fashion-MNIST test set is 31 MB; all 50 would not fit comfortably in memory at once).
 * @param ds - the clean test set
 * @param opts - corruptions (default all), severities (default 1..5), seed (default 0)
 * @example
 * for await (const s of corruptedSplits(test, { severities: [3] })) score(s.data);
 */
export async function* corruptedSplits(
  ds: ImageDataset,
  opts: { corruptions?: readonly CorruptionName[]; severities?: readonly number[]; seed?: number } = {},
): AsyncGenerator<CorruptedSplit> {
  const severities = opts.severities ?? SEVERITIES;
  severities.forEach(checkSeverity);
  for (const corruption of opts.corruptions ?? CORRUPTION_NAMES) {
    for (const severity of severities) {
      yield {
        corruption,
        severity,
        data: await corruptDataset(ds, corruption, severity, opts.seed ?? 0),
      };
    }
  }
}
