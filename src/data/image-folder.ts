/**
 * Image files decoded through sharp into an in-memory {@link ImageDataset}: an ImageFolder
 * (one sub-folder per class, like torchvision's `ImageFolder`) and flat folders of
 * unlabeled images.
 *
 * Every image is resized to one fixed size (`fit: 'fill'`, i.e. stretched without keeping
 * the aspect ratio, as torchvision's `Resize((h, w))` does, with sharp's bilinear kernel),
 * converted to 1 (grey) or 3 (sRGB) channels with any alpha channel dropped, and stored as
 * CHW floats in [0, 1]. Decoding runs a few files at a time.
 */
import { existsSync, type Stats, statSync } from 'node:fs';
import { readdir, readlink, realpath, stat } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import sharp from 'sharp';
import { DataError, UsageError } from '../util/errors.js';
import { type ImageDataset, UNLABELED } from './dataset.js';

/** File extensions (lower case) decoded as images. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp'];

/** How to decode images. */
export interface ImageLoadOptions {
  /** Output size `[height, width]`. */
  size: [number, number];
  /** 1 for grey, 3 for RGB. */
  channels: 1 | 3;
  /** Skip images that fail to decode (and count them) instead of throwing. Default false. */
  skipCorrupt?: boolean;
  /** Files decoded at the same time. Default 4. */
  concurrency?: number;
}

/** A loaded data set and the files that were skipped as corrupt. */
export interface ImageLoadResult {
  dataset: ImageDataset;
  /** Number of corrupt files skipped (always 0 unless `skipCorrupt`). */
  skipped: number;
  skippedFiles: string[];
}

function checkOptions(opts: ImageLoadOptions): void {
  const [h, w] = opts.size ?? [];
  if (!Number.isInteger(h) || !Number.isInteger(w) || h <= 0 || w <= 0) {
    throw new UsageError(
      `image size must be two positive integers [height, width], got ${JSON.stringify(opts.size)}`,
    );
  }
  if (opts.channels !== 1 && opts.channels !== 3) {
    throw new UsageError(`image channels must be 1 or 3, got ${String(opts.channels)}`);
  }
  const c = opts.concurrency ?? 4;
  if (!Number.isInteger(c) || c <= 0)
    throw new UsageError(`decode concurrency must be a positive integer, got ${c}`);
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order.
 * After the first failure no new item is started, and that failure is thrown once the calls
 * in flight have settled.
 * @param items - the inputs.
 * @param limit - the maximum number of concurrent calls.
 * @param fn - the async work for one item.
 * @example
 * const sizes = await mapPool(files, 4, async (f) => (await stat(f)).size);
 */
export async function mapPool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: { err: unknown } | null = null;
  const worker = async () => {
    while (failure === null && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw (failure as { err: unknown }).err;
  return out;
}

/**
 * Decodes one image file to CHW floats in [0, 1] of the requested size and channels.
 * @param file - a png, jpg/jpeg or webp file; named in the DataError thrown when it cannot be decoded.
 * @param size - `[height, width]` of the output.
 * @param channels - 1 (grey) or 3 (RGB).
 * @example
 * const chw = await decodeImage('cat.jpg', [32, 32], 3); // Float32Array of 3 * 32 * 32
 */
export async function decodeImage(
  file: string,
  size: [number, number],
  channels: 1 | 3,
): Promise<Float32Array> {
  const [h, w] = size;
  let decoded: { data: Uint8Array; info: { width: number; height: number; channels: number } };
  try {
    let p = sharp(file).resize(w, h, { fit: 'fill', kernel: 'linear' });
    p = channels === 1 ? p.grayscale() : p.toColourspace('srgb');
    decoded = await p.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new DataError(`${file}: cannot decode image (${(err as Error).message.trim()})`, {
      cause: err,
    });
  }
  const { data, info } = decoded;
  if (info.width !== w || info.height !== h) {
    throw new DataError(`${file}: decoded to ${info.width}×${info.height}, expected ${w}×${h}`);
  }
  return hwcToChw(data, h, w, info.channels, channels);
}

/**
 * Interleaved uint8 HWC pixels with `src` channels to planar CHW floats in [0, 1] with
 * `dst` channels: grey is replicated to RGB, RGB(A) becomes grey by the BT.601 luma
 * weights, extra (alpha) channels are dropped.
 */
function hwcToChw(data: Uint8Array, h: number, w: number, src: number, dst: 1 | 3): Float32Array {
  const hw = h * w;
  const out = new Float32Array(dst * hw);
  for (let p = 0; p < hw; p++) {
    const o = p * src;
    if (dst === 1) {
      out[p] =
        src >= 3
          ? (0.299 * data[o]! + 0.587 * data[o + 1]! + 0.114 * data[o + 2]!) / 255
          : data[o]! / 255;
    } else if (src >= 3) {
      out[p] = data[o]! / 255;
      out[hw + p] = data[o + 1]! / 255;
      out[2 * hw + p] = data[o + 2]! / 255;
    } else {
      const v = data[o]! / 255;
      out[p] = v;
      out[hw + p] = v;
      out[2 * hw + p] = v;
    }
  }
  return out;
}

/**
 * Decodes many files into one NCHW block. Returns the block (only kept images), the indices
 * of the kept files, and the skipped files.
 */
export async function decodeImages(
  files: readonly string[],
  opts: ImageLoadOptions,
): Promise<{ images: Float32Array; kept: number[]; skippedFiles: string[] }> {
  checkOptions(opts);
  const [h, w] = opts.size;
  const per = opts.channels * h * w;
  const images = new Float32Array(files.length * per);
  const ok = await mapPool(files, opts.concurrency ?? 4, async (file, i) => {
    try {
      images.set(await decodeImage(file, opts.size, opts.channels), i * per);
      return true;
    } catch (err) {
      if (opts.skipCorrupt && err instanceof DataError) return false;
      throw err;
    }
  });
  const kept: number[] = [];
  const skippedFiles: string[] = [];
  ok.forEach((good, i) => {
    if (good) kept.push(i);
    else skippedFiles.push(files[i]!);
  });
  if (skippedFiles.length === 0) return { images, kept, skippedFiles };
  // Compact in place (kept indices ascend, so each copy moves data towards the front).
  kept.forEach((src, dst) => {
    if (src !== dst) images.copyWithin(dst * per, src * per, (src + 1) * per);
  });
  return { images: images.slice(0, kept.length * per), kept, skippedFiles };
}

/**
 * Where a symbolic link leads, followed once to its final target (a chain of links is
 * followed by the kernel, a cycle ends in ELOOP). A link to nothing, or a cycle, is a
 * DataError naming the link: it was put there to be read, and skipping it in silence
 * would shrink the data set unnoticed.
 */
async function followLink(path: string): Promise<Stats> {
  try {
    return await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new DataError(`${path}: symbolic link to a missing file (${await readlink(path)})`, {
        cause: err,
      });
    if (code === 'ELOOP')
      throw new DataError(`${path}: symbolic link loop (it never reaches a file)`, { cause: err });
    throw err;
  }
}

/**
 * The image files (by extension, see {@link IMAGE_EXTENSIONS}) directly inside `dir`,
 * sorted by name; hidden files are ignored. Symbolic links are followed once, to their
 * final target: a link to an image file counts as that image (listed under the link's
 * name), a link to a folder is ignored like a real sub-folder (the listing is flat, so it
 * cannot loop), and a dangling or cyclic link with an image extension is a DataError
 * naming it. An image reached twice (itself and a link to it, or two links) is listed once,
 * under its first name: files are told apart by real path.
 * @param dir - the folder; a DataError names it when it is missing or not a folder.
 * @example
 * const files = await listImageFiles('unlabeled/'); // ['unlabeled/a.png', 'unlabeled/b.jpg']
 */
export async function listImageFiles(dir: string): Promise<string[]> {
  checkDir(dir, 'image folder');
  const realDir = await realpath(dir);
  const entries = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => !e.name.startsWith('.') && IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase()))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const seen = new Set<string>();
  const files: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    let real: string;
    if (e.isFile()) real = join(realDir, e.name);
    else if (e.isSymbolicLink() && (await followLink(path)).isFile()) real = await realpath(path);
    else continue;
    if (seen.has(real)) continue;
    seen.add(real);
    files.push(path);
  }
  return files;
}

/** Throws a DataError naming `dir` when it does not exist or is not a folder. */
export function checkDir(dir: string, what: string): void {
  if (!existsSync(dir)) throw new DataError(`${dir}: ${what} does not exist`);
  if (!statSync(dir).isDirectory()) throw new DataError(`${dir}: ${what} is not a folder`);
}

/**
 * Loads unlabeled images (labels {@link UNLABELED}, `numClasses` 0), e.g. extra data for
 * label-free denoiser training.
 * @param files - image paths, kept in this order.
 * @param opts - decode options; `name` names the data set (default `'images'`).
 * @example
 * const { dataset, skipped } = await loadImageFiles(await listImageFiles('extra/'),
 *   { size: [28, 28], channels: 1, skipCorrupt: true });
 */
export async function loadImageFiles(
  files: readonly string[],
  opts: ImageLoadOptions & { name?: string },
): Promise<ImageLoadResult> {
  const name = opts.name ?? 'images';
  if (files.length === 0) throw new DataError(`${name}: no image files given`);
  const { images, kept, skippedFiles } = await decodeImages(files, opts);
  if (kept.length === 0)
    throw new DataError(`${name}: all ${files.length} images failed to decode`);
  const [h, w] = opts.size;
  return {
    dataset: {
      name,
      size: kept.length,
      channels: opts.channels,
      height: h,
      width: w,
      numClasses: 0,
      images,
      labels: new Int32Array(kept.length).fill(UNLABELED),
      files: kept.map((i) => files[i]!),
    },
    skipped: skippedFiles.length,
    skippedFiles,
  };
}

/**
 * Loads the image files directly inside a flat folder (see {@link loadImageFiles}).
 * @param dir - the folder; a DataError names it when missing or without images.
 * @param opts - decode options.
 * @example
 * const { dataset } = await loadImageDir('extra/', { size: [28, 28], channels: 1 });
 */
export async function loadImageDir(dir: string, opts: ImageLoadOptions): Promise<ImageLoadResult> {
  const files = await listImageFiles(dir);
  if (files.length === 0)
    throw new DataError(`${dir}: no ${IMAGE_EXTENSIONS.join('/')} images in folder`);
  return loadImageFiles(files, { ...opts, name: dir });
}

/**
 * The class sub-folders of an ImageFolder root, sorted by name; hidden ones are ignored. A
 * symbolic link to a folder is a class like a real sub-folder; one that leads back to the
 * root or above it (where the classes would contain themselves) or nowhere is a DataError.
 */
async function classFolders(root: string): Promise<string[]> {
  const realRoot = await realpath(root);
  const names: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory()) names.push(e.name);
    else if (e.isSymbolicLink()) {
      const path = join(root, e.name);
      if (!(await followLink(path)).isDirectory()) continue;
      const real = await realpath(path);
      if (realRoot === real || realRoot.startsWith(real.endsWith(sep) ? real : real + sep))
        throw new DataError(`${path}: symbolic link loops back to ${real}, which holds ${root}`);
      names.push(e.name);
    }
  }
  return names.sort();
}

/**
 * Loads an ImageFolder: each sub-folder of `root` is a class, classes are the sub-folder
 * names sorted, labels their indices; images are the files directly inside each class folder,
 * sorted by name. A class folder without images is an error (as in torchvision). Symbolic
 * links to class folders and to images are followed (see {@link listImageFiles}).
 * @param root - the data set folder.
 * @param opts - decode options.
 * @example
 * const { dataset } = await loadImageFolder('flowers/train', { size: [64, 64], channels: 3 });
 * dataset.classNames; // ['daisy', 'rose', ...]
 */
export async function loadImageFolder(
  root: string,
  opts: ImageLoadOptions,
): Promise<ImageLoadResult> {
  checkDir(root, 'ImageFolder root');
  const classNames = await classFolders(root);
  if (classNames.length === 0) throw new DataError(`${root}: ImageFolder has no class sub-folders`);
  const files: string[] = [];
  const fileLabels: number[] = [];
  for (let c = 0; c < classNames.length; c++) {
    const dir = join(root, classNames[c]!);
    const list = await listImageFiles(dir);
    if (list.length === 0)
      throw new DataError(`${dir}: class folder has no ${IMAGE_EXTENSIONS.join('/')} images`);
    for (const f of list) {
      files.push(f);
      fileLabels.push(c);
    }
  }
  const { images, kept, skippedFiles } = await decodeImages(files, opts);
  if (kept.length === 0)
    throw new DataError(`${root}: all ${files.length} images failed to decode`);
  const [h, w] = opts.size;
  return {
    dataset: {
      name: root,
      size: kept.length,
      channels: opts.channels,
      height: h,
      width: w,
      numClasses: classNames.length,
      classNames,
      images,
      labels: Int32Array.from(kept, (i) => fileLabels[i]!),
      files: kept.map((i) => files[i]!),
    },
    skipped: skippedFiles.length,
    skippedFiles,
  };
}
