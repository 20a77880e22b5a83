/**
 * In-memory image data sets: every loader in src/data returns an {@link ImageDataset},
 * images as one NCHW float32 block in [0, 1], labels as int32.
 */
import { DataError, UsageError } from '../util/errors.js';
import { float32, type Tensor } from '../onnx/tensor.js';

/** Label of an image that has none (flat folders of unlabeled images). */
export const UNLABELED = -1;

/**
 * An image data set held in memory.
 *
 * `images` is NCHW (`size × channels × height × width`), values in [0, 1]. `labels[i]` is
 * the class (or, for ReID, the identity) of image `i`; {@link UNLABELED} (−1) marks
 * images without a label. `cameras` (ReID) holds a 0-based camera index per image.
 * `files` names the source file of each image when the set came from image files.
 */
export interface ImageDataset {
  name: string;
  size: number;
  channels: number;
  height: number;
  width: number;
  numClasses: number;
  classNames?: string[];
  /** NCHW, values in [0, 1]. */
  images: Float32Array;
  labels: Int32Array;
  /** ReID: camera index per image, 0-based. */
  cameras?: Int32Array;
  files?: string[];
}

/** Number of floats in one image of the data set. */
export function imageLength(ds: ImageDataset): number {
  return ds.channels * ds.height * ds.width;
}

/**
 * Checks that the arrays of a data set agree with its declared shape; throws a DataError
 * naming the data set otherwise.
 * @param ds - the data set to check.
 * @example
 * checkDataset(ds); // throws if ds.images.length !== ds.size * C * H * W
 */
export function checkDataset(ds: ImageDataset): void {
  const per = imageLength(ds);
  if (ds.images.length !== ds.size * per) {
    throw new DataError(
      `${ds.name}: images hold ${ds.images.length} floats, expected ${ds.size} × ${ds.channels}×${ds.height}×${ds.width}`,
    );
  }
  if (ds.labels.length !== ds.size) {
    throw new DataError(`${ds.name}: ${ds.labels.length} labels for ${ds.size} images`);
  }
  if (ds.cameras && ds.cameras.length !== ds.size) {
    throw new DataError(`${ds.name}: ${ds.cameras.length} camera ids for ${ds.size} images`);
  }
  if (ds.files && ds.files.length !== ds.size) {
    throw new DataError(`${ds.name}: ${ds.files.length} file names for ${ds.size} images`);
  }
}

function checkIndex(ds: ImageDataset, idx: number, pos: number): void {
  if (!Number.isInteger(idx) || idx < 0 || idx >= ds.size) {
    throw new UsageError(`${ds.name}: index ${idx} at position ${pos} is outside [0, ${ds.size})`);
  }
}

/**
 * A new data set holding copies of the images at `indices`, in that order (repeats allowed).
 * @param ds - the source data set.
 * @param indices - image indices into `ds`.
 * @example
 * const firstTen = subset(train, Array.from({ length: 10 }, (_, i) => i));
 */
export function subset(ds: ImageDataset, indices: ArrayLike<number>): ImageDataset {
  const n = indices.length;
  const per = imageLength(ds);
  const images = new Float32Array(n * per);
  const labels = new Int32Array(n);
  const cameras = ds.cameras ? new Int32Array(n) : undefined;
  const files = ds.files ? new Array<string>(n) : undefined;
  for (let i = 0; i < n; i++) {
    const k = indices[i]!;
    checkIndex(ds, k, i);
    images.set(ds.images.subarray(k * per, (k + 1) * per), i * per);
    labels[i] = ds.labels[k]!;
    if (cameras) cameras[i] = ds.cameras![k]!;
    if (files) files[i] = ds.files![k]!;
  }
  const out: ImageDataset = { ...ds, size: n, images, labels };
  if (cameras) out.cameras = cameras;
  if (files) out.files = files;
  return out;
}

/**
 * Concatenates two data sets of the same image shape (merged-dataset training: label-free
 * denoiser training on train + other unlabeled sets). Labels are kept as they are, so they
 * only stay meaningful when both sets share one label space or are unlabeled (−1);
 * `numClasses` is the larger of the two. Cameras and file names are kept only when both
 * sets have them; class names only when they are equal.
 * @param a - first data set (its images come first).
 * @param b - second data set.
 * @example
 * const merged = concatDatasets(fmnistTrain, unlabeledImages);
 */
export function concatDatasets(a: ImageDataset, b: ImageDataset): ImageDataset {
  if (a.channels !== b.channels || a.height !== b.height || a.width !== b.width) {
    throw new DataError(
      `cannot concatenate ${a.name} (${a.channels}×${a.height}×${a.width}) and ${b.name} (${b.channels}×${b.height}×${b.width}): image shapes differ`,
    );
  }
  const images = new Float32Array(a.images.length + b.images.length);
  images.set(a.images, 0);
  images.set(b.images, a.images.length);
  const labels = new Int32Array(a.size + b.size);
  labels.set(a.labels, 0);
  labels.set(b.labels, a.size);
  const out: ImageDataset = {
    name: `${a.name}+${b.name}`,
    size: a.size + b.size,
    channels: a.channels,
    height: a.height,
    width: a.width,
    numClasses: Math.max(a.numClasses, b.numClasses),
    images,
    labels,
  };
  if (a.classNames && b.classNames && a.classNames.join('\u0000') === b.classNames.join('\u0000')) {
    out.classNames = a.classNames.slice();
  }
  if (a.cameras && b.cameras) {
    out.cameras = new Int32Array(a.size + b.size);
    out.cameras.set(a.cameras, 0);
    out.cameras.set(b.cameras, a.size);
  }
  if (a.files && b.files) out.files = [...a.files, ...b.files];
  return out;
}

/**
 * Copies the images and labels at `indices` into one batch.
 * @param ds - the data set.
 * @param indices - image indices (a batch from a sampler).
 * @returns `x`: NCHW float32 of `indices.length` images; `y`: their labels.
 * @example
 * const { x, y } = gatherBatch(train, batchIndices); // x.length === batch * C * H * W
 */
export function gatherBatch(
  ds: ImageDataset,
  indices: ArrayLike<number>,
): { x: Float32Array; y: Int32Array } {
  const n = indices.length;
  const per = imageLength(ds);
  const x = new Float32Array(n * per);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = indices[i]!;
    checkIndex(ds, k, i);
    x.set(ds.images.subarray(k * per, (k + 1) * per), i * per);
    y[i] = ds.labels[k]!;
  }
  return { x, y };
}

/**
 * Model feeds over a data set, in order: `{ [inputName]: NCHW float32 batch }`, each batch
 * passed through `prep` when given (normalisation), optionally only every `count`-th image
 * starting at `index` (one shard of a data set split over several jobs).
 * @example
 * for (const feeds of feedBatches(test, 'input', 256)) await session.run(feeds);
 */
export function* feedBatches(
  ds: ImageDataset,
  inputName: string,
  batchSize: number,
  prep?: (x: Float32Array, n: number) => Float32Array,
  shard?: { index: number; count: number },
): Generator<Record<string, Tensor>, void> {
  const idx: number[] = [];
  for (let i = 0; i < ds.size; i++) if (!shard || i % shard.count === shard.index) idx.push(i);
  for (let s = 0; s < idx.length; s += batchSize) {
    const part = idx.slice(s, s + batchSize);
    const { x } = gatherBatch(ds, part);
    const v = prep ? prep(x, part.length) : x;
    yield { [inputName]: float32([part.length, ds.channels, ds.height, ds.width], v) };
  }
}
