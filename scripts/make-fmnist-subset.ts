/**
 * Builds the embedded Fashion-MNIST subset in data/fashion-mnist from the full data set.
 *
 * For each split and each class c, the indices of class c (in file order) are shuffled by a
 * generator forked from the seed with the label `<split>/<c>`, the first k are kept, and the
 * kept indices of all classes are written in ascending original order. Same input + same
 * seed gives byte-identical files.
 *
 * Usage:
 *   node --import tsx scripts/make-fmnist-subset.ts \
 *     [--src /usr/share/datasets/fashion-mnist] [--out data/fashion-mnist] [--seed 20240613] \
 *     [--train-per-class 1000] [--test-per-class 200]
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FMNIST_DEFAULT_PATH } from '../src/data/fashion-mnist.js';
import { type IdxArray, readIdx, writeIdx } from '../src/data/idx.js';
import { Rng } from '../src/util/rng.js';

const NUM_CLASSES = 10;

const { values } = parseArgs({
  options: {
    src: { type: 'string', default: FMNIST_DEFAULT_PATH },
    out: { type: 'string', default: 'data/fashion-mnist' },
    seed: { type: 'string', default: '20240613' },
    'train-per-class': { type: 'string', default: '1000' },
    'test-per-class': { type: 'string', default: '200' },
  },
});

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`--${flag} must be a positive integer, got '${v}'`);
  return n;
}

/** Indices of a class-balanced subset, `perClass` per class, ascending. */
function balancedIndices(labels: IdxArray, perClass: number, rng: Rng, split: string): number[] {
  const byClass: number[][] = Array.from({ length: NUM_CLASSES }, () => []);
  for (let i = 0; i < labels.data.length; i++) byClass[labels.data[i]!]!.push(i);
  const kept: number[] = [];
  byClass.forEach((idx, c) => {
    if (idx.length < perClass)
      throw new Error(`${split}: class ${c} has ${idx.length} images, need ${perClass}`);
    rng.fork(`${split}/${c}`).shuffle(idx);
    kept.push(...idx.slice(0, perClass));
  });
  return kept.sort((a, b) => a - b);
}

async function writeSplit(
  stem: string,
  perClass: number,
  rng: Rng,
  src: string,
  out: string,
): Promise<void> {
  const images = await readIdx(join(src, `${stem}-images-idx3-ubyte.gz`));
  const labels = await readIdx(join(src, `${stem}-labels-idx1-ubyte.gz`));
  const [, h, w] = images.dims as [number, number, number];
  const keep = balancedIndices(labels, perClass, rng, stem);
  const px = h * w;
  const outImages = new Uint8Array(keep.length * px);
  const outLabels = new Uint8Array(keep.length);
  keep.forEach((k, i) => {
    outImages.set(images.data.subarray(k * px, (k + 1) * px), i * px);
    outLabels[i] = labels.data[k]!;
  });
  await writeIdx(join(out, `${stem}-images-idx3-ubyte.gz`), {
    dtype: 'uint8',
    dims: [keep.length, h, w],
    data: outImages,
  });
  await writeIdx(join(out, `${stem}-labels-idx1-ubyte.gz`), {
    dtype: 'uint8',
    dims: [keep.length],
    data: outLabels,
  });
  console.log(`${stem}: kept ${keep.length} of ${labels.dims[0]} images (${perClass} per class)`);
}

const seed = positiveInt('seed', values.seed);
const rng = new Rng(seed);
mkdirSync(values.out, { recursive: true });
await writeSplit(
  'train',
  positiveInt('train-per-class', values['train-per-class']),
  rng,
  values.src,
  values.out,
);
await writeSplit(
  't10k',
  positiveInt('test-per-class', values['test-per-class']),
  rng,
  values.src,
  values.out,
);
