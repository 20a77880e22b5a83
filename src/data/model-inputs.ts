// The images a command feeds to a user's model: folders and Fashion-MNIST, sized and
// normalised for the model's one NCHW input.
import type { Model } from '../onnx/ir.js';
import { UsageError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { concatDatasets, type ImageDataset } from './dataset.js';
import { FMNIST_DEFAULT_PATH, loadFashionMnist } from './fashion-mnist.js';
import { loadImageDir } from './image-folder.js';
import { normalize } from './transforms.js';

/** Maps a batch of raw images (NCHW in [0, 1]) to the model's input (normalisation). */
export type Preprocess = (x: Float32Array, n: number) => Float32Array;

/** Options shared by commands that feed images to a user's model. */
export interface ImageInputOptions {
  /** One folder, or several (repeated `--images`) merged into one set. */
  images?: string | string[];
  data?: string;
  size?: number[];
  channels?: number;
  mean?: number[];
  std?: number[];
  skipCorrupt?: boolean;
}

/** The model's image input: name and [C, H, W] where static. */
export function imageInput(
  model: Model,
  source: string,
): { name: string; dims: (number | null)[] } {
  const inputs = model.graph.inputs;
  if (inputs.length !== 1) {
    throw new UsageError(
      `${source} has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); fit needs a model with one NCHW image input`,
    );
  }
  const inp = inputs[0]!;
  if (inp.dtype !== 'float32' || !inp.shape || inp.shape.length !== 4) {
    throw new UsageError(
      `${source}: input '${inp.name}' is ${inp.dtype}[${inp.shape ?? '?'}], fit needs float32 [N, C, H, W]`,
    );
  }
  return {
    name: inp.name,
    dims: inp.shape.slice(1).map((d) => (typeof d === 'number' ? d : null)),
  };
}

/** The image size for a model input: channels from the option or the model, H and W likewise. */
export function resolveSize(
  o: ImageInputOptions,
  dims: (number | null)[],
  source: string,
): { c: 1 | 3; h: number; w: number } {
  const c = o.channels ?? dims[0] ?? 3;
  if (c !== 1 && c !== 3) throw new UsageError(`--channels must be 1 or 3, got ${c}`);
  if (dims[0] !== null && dims[0] !== c)
    throw new UsageError(
      `--channels ${c} does not match ${source}'s input with ${dims[0]} channels`,
    );
  const size = o.size ?? [];
  const h = size[0] ?? dims[1];
  const w = size[1] ?? size[0] ?? dims[2];
  if (!h || !w) throw new UsageError(`${source} has a dynamic image size: give --size H,W`);
  if ((dims[1] !== null && dims[1] !== h) || (dims[2] !== null && dims[2] !== w)) {
    throw new UsageError(`--size ${h},${w} does not match ${source}'s input ${dims[1]}x${dims[2]}`);
  }
  return { c, h, w };
}

/** Normalisation by per-channel mean and std (one value is used for every channel). */
export function makePreprocess(c: number, mean?: number[], std?: number[]): Preprocess | undefined {
  if (!mean && !std) return undefined;
  const m = mean ?? new Array<number>(c).fill(0);
  const s = std ?? new Array<number>(c).fill(1);
  const expand = (v: number[], flag: string) => {
    if (v.length === 1) return new Array<number>(c).fill(v[0]!);
    if (v.length !== c) throw new UsageError(`${flag} has ${v.length} values for ${c} channels`);
    return v;
  };
  const t = normalize(expand(m, '--mean'), expand(s, '--std'));
  const rng = new Rng(0);
  return (x, n) => t(x, { n, c, h: x.length / n / c, w: 1 }, rng);
}

/**
 * The images a command feeds to a model: folders (`--images`, decoded to the model's
 * input size, normalised by `--mean`/`--std`) and/or Fashion-MNIST (`--data embedded`,
 * `fashion-mnist` or an IDX folder; pixels in [0, 1]). Several sources are merged into one
 * set in the order given, Fashion-MNIST first (the paper's merged-datasets mode: label-free
 * training on more unlabeled data); `skipped` counts undecodable files over all folders.
 */
export async function loadInputImages(
  model: Model,
  source: string,
  o: ImageInputOptions,
  split: 'train' | 'test' = 'test',
): Promise<{ data: ImageDataset; skipped: number; prep?: Preprocess; inputName: string }> {
  const input = imageInput(model, source);
  const { c, h, w } = resolveSize(o, input.dims, source);
  const prep = makePreprocess(c, o.mean, o.std);
  const folders = o.images === undefined ? [] : [o.images].flat();
  if (folders.length === 0 && !o.data)
    throw new UsageError('give --images <dir> or --data <embedded|fashion-mnist|dir>');
  const parts: ImageDataset[] = [];
  let skipped = 0;
  if (o.data) {
    const data = await loadFashionMnist(dataSourcePath(o.data) ?? 'embedded', split);
    if (data.channels !== c || data.height !== h || data.width !== w) {
      throw new UsageError(
        `--data ${o.data} has ${data.channels}x${data.height}x${data.width} images, ${source} takes ${c}x${h}x${w}`,
      );
    }
    parts.push(data);
  }
  for (const folder of folders) {
    const loaded = await loadImageDir(folder, {
      size: [h, w],
      channels: c,
      skipCorrupt: o.skipCorrupt,
    });
    parts.push(loaded.dataset);
    skipped += loaded.skipped;
  }
  const data = parts.slice(1).reduce((a, b) => concatDatasets(a, b), parts[0]!);
  return { data, skipped, prep, inputName: input.name };
}

/**
 * The folder a `--data` source reads, or undefined for the embedded subset: an input path
 * that no output may overwrite.
 */
export function dataSourcePath(data: string | undefined): string | undefined {
  if (data === undefined || data === 'embedded') return undefined;
  return data === 'fashion-mnist' ? FMNIST_DEFAULT_PATH : data;
}
