/**
 * CIFAR-10, binary version (`cifar-10-batches-bin`): `data_batch_1.bin` … `data_batch_5.bin`
 * and `test_batch.bin`, each a sequence of 3073-byte records: one label byte, then the
 * 32×32 red plane, green plane and blue plane (row-major), which is already CHW order.
 * `batches.meta.txt` lists the class names, one per line.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError, UsageError } from '../util/errors.js';
import type { ImageDataset } from './dataset.js';

/** Bytes of one CIFAR-10 record: label + 3 × 32 × 32 pixels. */
export const CIFAR_RECORD_BYTES = 1 + 3 * 32 * 32;

/** Class names used when `batches.meta.txt` is absent. */
export const CIFAR10_CLASS_NAMES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

/** The batch files of a split, in the order they are concatenated. */
export function cifarBatchFiles(split: 'train' | 'test'): string[] {
  return split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
}

/**
 * Reads class names from `batches.meta.txt` (non-empty lines, trimmed), or returns the
 * standard CIFAR-10 names when the file does not exist.
 * @param dir - the `cifar-10-batches-bin` folder.
 */
export async function readCifarClassNames(dir: string): Promise<string[]> {
  const file = join(dir, 'batches.meta.txt');
  if (!existsSync(file)) return CIFAR10_CLASS_NAMES.slice();
  const names = (await readFile(file, 'utf8'))
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== CIFAR10_CLASS_NAMES.length) {
    throw new DataError(
      `${file}: expected ${CIFAR10_CLASS_NAMES.length} class names, found ${names.length}`,
    );
  }
  return names;
}

/**
 * Loads a CIFAR-10 split as a 3×32×32 data set with values in [0, 1].
 * @param dir - folder holding the `.bin` batch files (and optionally `batches.meta.txt`).
 * @param split - `'train'` (the 5 data batches, 50,000 images) or `'test'` (10,000).
 * @param opts - `files` replaces the standard batch list (e.g. only `data_batch_1.bin`).
 * @example
 * const test = await loadCifar10('/data/cifar-10-batches-bin', 'test');
 */
export async function loadCifar10(
  dir: string,
  split: 'train' | 'test',
  opts: { files?: string[] } = {},
): Promise<ImageDataset> {
  if (split !== 'train' && split !== 'test') {
    throw new UsageError(`CIFAR-10 split must be 'train' or 'test', got '${String(split)}'`);
  }
  if (!existsSync(dir)) throw new DataError(`${dir}: CIFAR-10 folder does not exist`);
  const files = (opts.files ?? cifarBatchFiles(split)).map((f) => join(dir, f));
  let total = 0;
  for (const f of files) {
    let size: number;
    try {
      size = (await stat(f)).size;
    } catch {
      throw new DataError(`${f}: missing CIFAR-10 batch file`);
    }
    if (size === 0 || size % CIFAR_RECORD_BYTES !== 0) {
      throw new DataError(
        `${f}: size ${size} bytes is not a whole number of ${CIFAR_RECORD_BYTES}-byte CIFAR-10 records (truncated or not a binary batch)`,
      );
    }
    total += size / CIFAR_RECORD_BYTES;
  }
  const classNames = await readCifarClassNames(dir);
  const px = CIFAR_RECORD_BYTES - 1;
  const images = new Float32Array(total * px);
  const labels = new Int32Array(total);
  let n = 0;
  for (const f of files) {
    const buf = await readFile(f);
    const records = buf.length / CIFAR_RECORD_BYTES;
    for (let r = 0; r < records; r++, n++) {
      const off = r * CIFAR_RECORD_BYTES;
      const label = buf[off]!;
      if (label >= classNames.length) {
        throw new DataError(
          `${f}: record ${r} has label ${label}, expected 0..${classNames.length - 1}`,
        );
      }
      labels[n] = label;
      const base = n * px;
      for (let i = 0; i < px; i++) images[base + i] = buf[off + 1 + i]! / 255;
    }
  }
  return {
    name: `cifar10-${split}`,
    size: total,
    channels: 3,
    height: 32,
    width: 32,
    numClasses: classNames.length,
    classNames,
    images,
    labels,
  };
}
