/**
 * Fashion-MNIST (Zalando, MIT licence): 28×28 grey images of 10 clothing classes.
 *
 * The package embeds a class-balanced subset (10,000 train / 2,000 test images, see
 * data/fashion-mnist/README.md) so that examples and tests run without downloads; the full
 * set can be read from any folder holding the four standard IDX files, gzipped or not
 * (Debian/Ubuntu: `apt-get install dataset-fashion-mnist` puts them in
 * {@link FMNIST_DEFAULT_PATH}).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError, UsageError } from '../util/errors.js';
import type { ImageDataset } from './dataset.js';
import { type IdxArray, readIdx } from './idx.js';

/** The 10 Fashion-MNIST class names, by label. */
export const FMNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Where Debian's `dataset-fashion-mnist` package installs the full data set. */
export const FMNIST_DEFAULT_PATH = '/usr/share/datasets/fashion-mnist';

/**
 * Folder of the embedded subset. Both src/data (run through tsx) and dist/data (after
 * `tsc`) sit two levels below the package root, so one relative URL serves both.
 */
export function embeddedFashionMnistDir(): string {
  return fileURLToPath(new URL('../../data/fashion-mnist/', import.meta.url));
}

/** The file stem of the images and labels of a split (`train` or `t10k`). */
function stem(split: 'train' | 'test'): string {
  return split === 'train' ? 'train' : 't10k';
}

/** Path of an IDX file in `dir`, preferring the gzipped name. */
function findIdx(dir: string, base: string): string {
  const candidates = [`${base}.gz`, base];
  for (const c of candidates) {
    const p = join(dir, c);
    if (existsSync(p)) return p;
  }
  throw new DataError(`${dir}: missing Fashion-MNIST file ${candidates.join(' or ')}`);
}

/**
 * Loads a Fashion-MNIST split as a 1×28×28 data set with values in [0, 1].
 * @param source - `'embedded'` for the subset shipped with the package, or a folder holding
 *   `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
 *   `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]`.
 * @param split - `'train'` or `'test'` (the `t10k` files).
 * @example
 * const train = await loadFashionMnist('embedded', 'train'); // 10,000 images
 * const full = await loadFashionMnist(FMNIST_DEFAULT_PATH, 'test'); // 10,000 images
 */
export async function loadFashionMnist(
  source: 'embedded' | (string & {}),
  split: 'train' | 'test',
): Promise<ImageDataset> {
  if (split !== 'train' && split !== 'test') {
    throw new UsageError(`Fashion-MNIST split must be 'train' or 'test', got '${String(split)}'`);
  }
  const dir = source === 'embedded' ? embeddedFashionMnistDir() : source;
  if (!existsSync(dir)) throw new DataError(`${dir}: Fashion-MNIST folder does not exist`);
  const imagesFile = findIdx(dir, `${stem(split)}-images-idx3-ubyte`);
  const labelsFile = findIdx(dir, `${stem(split)}-labels-idx1-ubyte`);
  // Both read at once, but when both fail the images file is named, whichever failed first:
  // the same bad folder gives the same message every time.
  const [img, lab] = (
    await Promise.allSettled([readIdx(imagesFile), readIdx(labelsFile)])
  ).map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  }) as [Awaited<ReturnType<typeof readIdx>>, Awaited<ReturnType<typeof readIdx>>];
  return idxToDataset(
    img,
    lab,
    imagesFile,
    labelsFile,
    source === 'embedded' ? `fmnist-embedded-${split}` : `fmnist-${split}`,
  );
}

/**
 * Builds a data set from decoded MNIST-style IDX arrays: images uint8 [N, H, W], labels
 * uint8 [N] below 10.
 */
export function idxToDataset(
  img: IdxArray,
  lab: IdxArray,
  imagesFile: string,
  labelsFile: string,
  name: string,
): ImageDataset {
  if (img.dtype !== 'uint8' || img.dims.length !== 3) {
    throw new DataError(
      `${imagesFile}: expected uint8 images [N, H, W], got ${img.dtype} [${img.dims.join(', ')}]`,
    );
  }
  if (lab.dtype !== 'uint8' || lab.dims.length !== 1) {
    throw new DataError(
      `${labelsFile}: expected uint8 labels [N], got ${lab.dtype} [${lab.dims.join(', ')}]`,
    );
  }
  const [n, h, w] = img.dims as [number, number, number];
  if (lab.dims[0] !== n) {
    throw new DataError(`${labelsFile}: ${lab.dims[0]} labels for ${n} images in ${imagesFile}`);
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = lab.data[i]!;
    if (v >= FMNIST_CLASS_NAMES.length) {
      throw new DataError(
        `${labelsFile}: label ${v} at index ${i} is not a class 0..${FMNIST_CLASS_NAMES.length - 1}`,
      );
    }
    labels[i] = v;
  }
  const images = new Float32Array(n * h * w);
  const src = img.data;
  for (let i = 0; i < images.length; i++) images[i] = src[i]! / 255;
  return {
    name,
    size: n,
    channels: 1,
    height: h,
    width: w,
    numClasses: FMNIST_CLASS_NAMES.length,
    classNames: FMNIST_CLASS_NAMES.slice(),
    images,
    labels,
  };
}
