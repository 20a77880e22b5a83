/**
 * Market-1501 person re-identification data (Zheng et al., ICCV 2015), folder layout:
 * `bounding_box_train/` (training), `query/` and `bounding_box_test/` (gallery).
 *
 * File names are `PPPP_cCsS_FFFFFF_NN.jpg`: person id `PPPP`, camera `C` (1..6), video
 * sequence `S`, frame `FFFFFF`, box `NN`. Two special ids exist:
 * - `-1` ("junk"): boxes of bad quality or body parts. Following the standard protocol
 *   (Market-1501 evaluation code, where junk gallery images are ignored; the usual
 *   loaders such as TransReID's simply drop them), images with id −1 are dropped from
 *   every split by default. With `keepJunk: true` they stay in query/gallery with label −1,
 *   and the evaluator must then ignore them.
 * - `0000`: distractors. They stay in the gallery with label 0; no query has id 0, so they
 *   never match and only act as negatives.
 * Training ids are relabelled to 0..K−1 in ascending order of the original id; query and
 * gallery keep the original ids as labels so that they can be compared with each other.
 */
import { basename, join } from 'node:path';
import { DataError, UsageError } from '../util/errors.js';
import {
  checkDir,
  decodeImages,
  type ImageLoadOptions,
  type ImageLoadResult,
  listImageFiles,
} from './image-folder.js';

/** The three Market-1501 splits. */
export type MarketSplit = 'train' | 'query' | 'gallery';

/** Folder of each split under the data set root. */
export const MARKET_FOLDERS: Readonly<Record<MarketSplit, string>> = {
  train: 'bounding_box_train',
  query: 'query',
  gallery: 'bounding_box_test',
};

/** Fields of a Market-1501 file name. */
export interface MarketName {
  /** Person id; −1 junk, 0 distractor. */
  pid: number;
  /** Camera index, 0-based (`c1` → 0). */
  camera: number;
  sequence: number;
  frame: number;
  box: number;
}

const NAME_RE = /^(-1|\d+)_c(\d+)s(\d+)_(\d+)_(\d+)\.(?:jpe?g|png|webp)$/i;

/**
 * Parses a Market-1501 file name.
 * @param file - a path or name such as `0002_c1s1_000451_03.jpg`; named in the DataError
 *   thrown when it does not follow the pattern or the camera is outside 1..numCameras.
 * @param numCameras - number of cameras (6 for Market-1501).
 * @example
 * parseMarketName('0002_c3s1_000451_03.jpg'); // { pid: 2, camera: 2, sequence: 1, frame: 451, box: 3 }
 */
export function parseMarketName(file: string, numCameras = 6): MarketName {
  const m = NAME_RE.exec(basename(file));
  if (m === null)
    throw new DataError(`${file}: not a Market-1501 file name (expected PPPP_cCsS_FFFFFF_NN.jpg)`);
  const cam = Number(m[2]);
  if (cam < 1 || cam > numCameras)
    throw new DataError(`${file}: camera c${cam} is outside c1..c${numCameras}`);
  return {
    pid: Number(m[1]),
    camera: cam - 1,
    sequence: Number(m[3]),
    frame: Number(m[4]),
    box: Number(m[5]),
  };
}

/** Options of {@link loadMarket1501}. */
export interface MarketLoadOptions extends ImageLoadOptions {
  /** Keep id −1 images in query/gallery with label −1 (never in train). Default false. */
  keepJunk?: boolean;
  /** Number of cameras (file names `c1`..`cN`). Default 6. */
  numCameras?: number;
}

/** A loaded Market-1501 split. */
export interface MarketLoadResult extends ImageLoadResult {
  /**
   * Train: the original person id of each label (`personIds[label]`). Query/gallery: the
   * distinct original ids present, ascending.
   */
  personIds: Int32Array;
  /** Number of id −1 images dropped. */
  junkDropped: number;
}

/**
 * Loads one split of Market-1501 (labels: relabelled ids for train, original ids for
 * query/gallery; cameras 0-based). `numClasses` is the number of distinct ids.
 * @param root - the data set folder holding `bounding_box_train`, `query`, `bounding_box_test`.
 * @param split - `'train'`, `'query'` or `'gallery'`.
 * @param opts - decode options (ReID: `{ size: [256, 128], channels: 3 }`) and junk handling.
 * @example
 * const { dataset } = await loadMarket1501('Market-1501-v15.09.15', 'train', { size: [256, 128], channels: 3 });
 * dataset.numClasses; // 751
 */
export async function loadMarket1501(
  root: string,
  split: MarketSplit,
  opts: MarketLoadOptions,
): Promise<MarketLoadResult> {
  if (!(split in MARKET_FOLDERS)) {
    throw new UsageError(`Market-1501 split must be 'train', 'query' or 'gallery', got '${split}'`);
  }
  checkDir(root, 'Market-1501 root');
  const dir = join(root, MARKET_FOLDERS[split]);
  checkDir(dir, `Market-1501 ${split} folder`);
  const all = await listImageFiles(dir);
  if (all.length === 0) throw new DataError(`${dir}: no images in Market-1501 ${split} folder`);
  const keepJunk = split !== 'train' && opts.keepJunk === true;
  const files: string[] = [];
  const names: MarketName[] = [];
  let junkDropped = 0;
  for (const f of all) {
    const n = parseMarketName(f, opts.numCameras ?? 6);
    if (n.pid === -1 && !keepJunk) {
      junkDropped++;
      continue;
    }
    files.push(f);
    names.push(n);
  }
  if (files.length === 0)
    throw new DataError(`${dir}: only junk (id -1) images in Market-1501 ${split} folder`);
  const { images, kept, skippedFiles } = await decodeImages(files, opts);
  if (kept.length === 0) throw new DataError(`${dir}: all ${files.length} images failed to decode`);

  const pids = kept.map((i) => names[i]!.pid);
  const distinct = [...new Set(pids.filter((p) => p >= 0))].sort((a, b) => a - b);
  let labels: Int32Array;
  if (split === 'train') {
    const toLabel = new Map(distinct.map((p, l) => [p, l]));
    labels = Int32Array.from(pids, (p) => toLabel.get(p)!);
  } else {
    labels = Int32Array.from(pids);
  }
  const [h, w] = opts.size;
  return {
    dataset: {
      name: `market1501-${split}`,
      size: kept.length,
      channels: opts.channels,
      height: h,
      width: w,
      numClasses: distinct.length,
      images,
      labels,
      cameras: Int32Array.from(kept, (i) => names[i]!.camera),
      files: kept.map((i) => files[i]!),
    },
    skipped: skippedFiles.length,
    skippedFiles,
    personIds: Int32Array.from(distinct),
    junkDropped,
  };
}
