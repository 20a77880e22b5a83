/**
 * Training checkpoints that survive a kill at any moment.
 *
 * A run folder holds `checkpoint`, a relative symbolic link to one complete checkpoint
 * folder `checkpoint-<step>/` (`weights.safetensors`, `optimizer.safetensors`, other
 * tensor sets, then `state.json`, which lists every file's size and SHA-256). A new
 * checkpoint is written into a temporary folder, flushed, renamed to its final name, and
 * then published by renaming a fresh link over `checkpoint`: one atomic rename. Until that
 * rename the previous checkpoint is the current one and stays untouched; after it, the
 * previous folder is removed. Leftovers of an interrupted write (temporary folders and
 * links, unpublished folders, temporary files of the atomic writer) are removed at the
 * next write or resume. Nothing is written when a tensor holds NaN or ±Inf.
 *
 * Readers that open `checkpoint/state.json` or `checkpoint/weights.safetensors` follow the
 * link; checkpoints written before this layout (a plain `checkpoint/` folder with the
 * optimiser state in `state.json`) are still read.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { DataError, NonFiniteError } from '../util/errors.js';
import { decodeSafetensors, encodeSafetensors } from '../io/safetensors.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import type { OptimizerSnapshot, OptimizerState } from './optim.js';
import type { ParamStore } from '../models/params.js';

/** File names inside a checkpoint folder. */
export const CHECKPOINT_WEIGHTS = 'weights.safetensors';
export const CHECKPOINT_OPTIMIZER = 'optimizer.safetensors';
export const CHECKPOINT_STATE = 'state.json';
/** Name (in a training output folder) of the link to its latest checkpoint. */
export const CHECKPOINT_DIR = 'checkpoint';
/** Layout version written by {@link saveCheckpoint}. */
export const CHECKPOINT_FORMAT = 2;

/** What a checkpoint records besides the tensors. */
export interface CheckpointState {
  /** Layout version (absent: the first layout, optimiser state in this JSON). */
  format?: number;
  preset: string;
  /** Preset options that change shapes (`getPreset(preset, presetOptions)` rebuilds it). */
  presetOptions?: { numClasses: number; bnneck: boolean };
  config: unknown;
  /** The resolved hyper-parameters; a resume with other values is refused. */
  hyper?: Record<string, unknown>;
  /** Last completed epoch (0-based; −1 inside the first epoch). */
  epoch: number;
  /** Optimiser steps taken so far, over all phases. */
  globalStep?: number;
  /** First layout only: the optimiser state as JSON. */
  optimizer?: OptimizerState;
  /**
   * Random state: every random draw of epoch e comes from streams forked from
   * `new Rng(seed)`, so the seed (with the loop's stream state) is the whole state.
   */
  rng?: { seed: number; base: readonly (number | null)[] };
  history: unknown[];
  /** The training loop's position and counters (see `runTraining`). */
  loop?: unknown;
  /** Size and SHA-256 of each tensor file of the folder. */
  files?: Record<string, { bytes: number; sha256: string }>;
}

/** A named point in a checkpoint write, for tests that interrupt the write there. */
export type WriteHook = (boundary: string) => void;

/** What {@link saveCheckpoint} writes besides the main weights and the state. */
export interface CheckpointExtras {
  /** Other tensor sets, each to `<name>.safetensors` (an EMA copy, denoisers). */
  tensors?: Record<string, Map<string, Tensor>>;
  /** Optimiser states by name (one per training phase), to `optimizer.safetensors`. */
  optimizers?: Record<string, OptimizerSnapshot>;
  /** Called at every write boundary (tests kill the write there). */
  hook?: WriteHook;
}

/** A checkpoint as read back. */
export interface LoadedCheckpoint {
  tensors: Map<string, Tensor>;
  state: CheckpointState;
  /** The path it was found at (the link, or the folder itself). */
  dir: string;
  /** Other tensor sets by name. */
  extra: Record<string, Map<string, Tensor>>;
  /** Optimiser states by name (empty for the first layout: see `state.optimizer`). */
  optimizers: Record<string, OptimizerSnapshot>;
}

/**
 * Throws a NonFiniteError naming the first tensor with a NaN or ±Inf value.
 * @param sets - tensor sets by file name, for the message
 */
function assertFinite(sets: [string, Map<string, Tensor>][]): void {
  for (const [file, set] of sets) {
    for (const [name, t] of set) {
      const d = t.data as Float32Array;
      for (let i = 0; i < d.length; i++) {
        if (!Number.isFinite(d[i])) {
          throw new NonFiniteError(
            `refusing to write a checkpoint: '${name}' (${file}) holds ${d[i]} at index ${i}`,
            { what: 'tensor', tensor: name },
          );
        }
      }
    }
  }
}

/** Optimiser states as one tensor map (`<name>/<param>/<buffer index>`) and metadata. */
function encodeOptimizers(opts: Record<string, OptimizerSnapshot>): {
  tensors: Map<string, Tensor>;
  meta: Record<string, string>;
} {
  const tensors = new Map<string, Tensor>();
  const head: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(opts)) {
    head[key] = { kind: s.kind, step: s.step, steps: s.steps };
    for (const [p, bufs] of s.buffers)
      bufs.forEach((b, i) => tensors.set(`${key}/${p}/${i}`, float32([b.length], b)));
  }
  return { tensors, meta: { optimizers: JSON.stringify(head) } };
}

function decodeOptimizers(
  tensors: Map<string, Tensor>,
  meta: Record<string, string>,
  source: string,
): Record<string, OptimizerSnapshot> {
  let head: Record<string, { kind: string; step: number; steps: Record<string, number> }>;
  try {
    head = JSON.parse(meta.optimizers ?? '{}') as typeof head;
  } catch (err) {
    throw new DataError(`${source}: optimiser metadata is not valid JSON`, { cause: err });
  }
  const out: Record<string, OptimizerSnapshot> = {};
  for (const [key, h] of Object.entries(head)) out[key] = { ...h, buffers: new Map() };
  for (const [name, t] of tensors) {
    const [key, ...rest] = name.split('/');
    const index = Number(rest.pop());
    const snap = out[key!];
    if (!snap || !Number.isInteger(index) || rest.length === 0)
      throw new DataError(`${source}: unexpected tensor '${name}'`);
    const param = rest.join('/');
    const list = snap.buffers.get(param) ?? [];
    list[index] = t.data as Float32Array;
    snap.buffers.set(param, list);
  }
  return out;
}

/** Writes a file in two halves (a boundary between them), flushed to disk. */
function writeDurable(path: string, bytes: Uint8Array, hook: WriteHook | undefined): void {
  const fd = openSync(path, 'wx');
  const half = bytes.length >> 1;
  let off = 0;
  while (off < half) off += writeSync(fd, bytes, off, half - off);
  hook?.(`partial:${basename(path)}`);
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
  fsyncSync(fd);
  closeSync(fd);
  hook?.(`written:${basename(path)}`);
}

/** Flushes a folder's entries (renames) to disk where the file system allows it. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on folders; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Whether a temporary name's writer (pid, thread) may still be writing it. */
function writerAlive(pid: number, thread: number | undefined): boolean {
  // This process writes checkpoints synchronously: its own leftovers are never in use.
  if (pid === process.pid) return thread !== undefined && thread !== threadId;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where a checkpoint link points (a folder name in the same parent), or null. */
function linkTarget(link: string): string | null {
  try {
    return lstatSync(link).isSymbolicLink() ? basename(readlinkSync(link)) : null;
  } catch {
    return null;
  }
}

/** The atomic writer's temporary files: `.NAME.PID.THREAD.N.tmp`. */
const ATOMIC_TMP = /^\..+\.(\d+)\.(\d+)\.\d+\.tmp$/;

/**
 * Removes what interrupted writes left in a run folder: temporary checkpoint folders and
 * links, checkpoint folders that were never published, a moved-aside first-layout folder
 * once the link exists, and the atomic writer's temporary files (`.NAME.PID.THREAD.N.tmp`),
 * each only when its writer is gone (this thread is never in the middle of a write here).
 * @param link - the checkpoint link (`<run>/checkpoint`)
 * @returns the names removed
 */
export function removeCheckpointLeftovers(link: string): string[] {
  const parent = dirname(link);
  const base = basename(link);
  if (!existsSync(parent)) return [];
  const current = linkTarget(link);
  const esc = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const ownTmp = new RegExp(`^\\.${esc}(?:-\\d+|)\\.(\\d+)(?:\\.link)?\\.tmp$`);
  const published = new RegExp(`^${esc}-\\d+(?:-\\d+)?$`);
  const removed: string[] = [];
  for (const name of readdirSync(parent)) {
    const own = ownTmp.exec(name);
    const atomic = own ? null : ATOMIC_TMP.exec(name);
    const stale =
      (own !== null && !writerAlive(Number(own[1]), undefined)) ||
      (atomic !== null && !writerAlive(Number(atomic[1]), Number(atomic[2]))) ||
      (published.test(name) && name !== current) ||
      (name === `.${base}.legacy` && current !== null);
    if (stale) {
      rmSync(join(parent, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

let counter = 0;

/**
 * Writes a checkpoint as one unit: the tensors and the state go to a new folder, which
 * becomes current by one atomic rename of the `checkpoint` link (see the module notes).
 * Every tensor is checked first: a NaN or ±Inf is a NonFiniteError naming the tensor, and
 * nothing is written.
 * @param path - the checkpoint link, `<run folder>/checkpoint` (its folder is created)
 * @param store - the main weights (`weights.safetensors`)
 * @param state - epoch, step, config, history, loop state
 * @param extras - optimiser states, other tensor sets, a write hook for tests
 * @returns the published folder
 * @example
 * saveCheckpoint('runs/vit/checkpoint', store, { preset, config, epoch, globalStep, history },
 *   { optimizers: { backbone: opt.snapshot() } });
 */
export function saveCheckpoint(
  path: string,
  store: ParamStore | Map<string, Tensor>,
  state: CheckpointState,
  extras: CheckpointExtras = {},
): string {
  const hook = extras.hook;
  const weights = store instanceof Map ? store : store.toTensors();
  const { tensors: optTensors, meta: optMeta } = encodeOptimizers(extras.optimizers ?? {});
  const files: [string, Map<string, Tensor>, Record<string, string>][] = [
    [CHECKPOINT_WEIGHTS, weights, { epoch: String(state.epoch), preset: state.preset }],
    ...Object.entries(extras.tensors ?? {}).map(
      ([k, t]) => [`${k}.safetensors`, t, { epoch: String(state.epoch) }] as (typeof files)[number],
    ),
    [CHECKPOINT_OPTIMIZER, optTensors, optMeta],
  ];
  assertFinite(files.map(([f, t]) => [f, t]));
  const parent = dirname(path);
  const base = basename(path);
  mkdirSync(parent, { recursive: true });
  removeCheckpointLeftovers(path);
  hook?.('begin');
  const step = String(state.globalStep ?? state.epoch).padStart(8, '0');
  const tmp = join(parent, `.${base}-${step}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  hook?.('created:tmp');
  const listed: Record<string, { bytes: number; sha256: string }> = {};
  for (const [file, tensors, meta] of files) {
    const bytes = encodeSafetensors(tensors, meta);
    writeDurable(join(tmp, file), bytes, hook);
    listed[file] = { bytes: bytes.length, sha256: sha256(bytes) };
  }
  const full: CheckpointState = { ...state, format: CHECKPOINT_FORMAT, files: listed };
  delete full.optimizer;
  writeDurable(join(tmp, CHECKPOINT_STATE), Buffer.from(`${JSON.stringify(full)}\n`), hook);
  fsyncDir(tmp);
  const previous = linkTarget(path);
  let final = `${base}-${step}`;
  if (final === previous) final = `${final}-${counter++}`;
  rmSync(join(parent, final), { recursive: true, force: true });
  renameSync(tmp, join(parent, final));
  hook?.('renamed:folder');
  const linkTmp = join(parent, `.${base}.${process.pid}.link.tmp`);
  rmSync(linkTmp, { force: true });
  symlinkSync(final, linkTmp);
  hook?.('created:link');
  if (previous === null && existsSync(path)) {
    // A first-layout folder: moved aside (readers fall back to it) so the link can replace it.
    renameSync(path, join(parent, `.${base}.legacy`));
    hook?.('moved:legacy');
  }
  renameSync(linkTmp, path);
  fsyncDir(parent);
  hook?.('switched');
  if (previous !== null) rmSync(join(parent, previous), { recursive: true, force: true });
  rmSync(join(parent, `.${base}.legacy`), { recursive: true, force: true });
  hook?.('removed:previous');
  return join(parent, final);
}

/**
 * Resolves a checkpoint path: a checkpoint folder (or link to one), or a training output
 * folder holding one as `checkpoint`. A run folder whose link is missing because a write
 * was interrupted while moving a first-layout folder aside falls back to that folder.
 */
export function resolveCheckpointDir(path: string): string {
  if (!existsSync(path)) throw new DataError(`no such checkpoint: ${path}`);
  if (!statSync(path).isDirectory()) {
    throw new DataError(
      `${path}: a checkpoint is a folder with ${CHECKPOINT_WEIGHTS} and ${CHECKPOINT_STATE}`,
    );
  }
  if (existsSync(join(path, CHECKPOINT_STATE))) return path;
  for (const inner of [CHECKPOINT_DIR, `.${CHECKPOINT_DIR}.legacy`]) {
    if (existsSync(join(path, inner, CHECKPOINT_STATE))) return join(path, inner);
  }
  return path;
}

/** Parses and checks `state.json`. */
function readState(dir: string): CheckpointState {
  const statePath = join(dir, CHECKPOINT_STATE);
  let state: CheckpointState;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as CheckpointState;
  } catch (err) {
    throw new DataError(`${statePath}: not valid JSON`, { cause: err });
  }
  const v2 = (state?.format ?? 1) >= 2;
  const bad = (
    [
      ['preset', typeof state?.preset === 'string'],
      ['epoch', Number.isInteger(state?.epoch)],
      ['optimizer', v2 || (typeof state?.optimizer === 'object' && state.optimizer !== null)],
      ['history', Array.isArray(state?.history)],
      ['files', !v2 || (typeof state?.files === 'object' && state.files !== null)],
    ] as const
  )
    .filter(([, ok]) => !ok)
    .map(([k]) => k);
  if (bad.length) throw new DataError(`${statePath}: missing or invalid ${bad.join(', ')}`);
  return state;
}

/** Reads a listed file of a checkpoint and checks its size and SHA-256. */
function readListed(dir: string, file: string, entry: { bytes: number; sha256: string }) {
  const path = join(dir, file);
  if (!existsSync(path)) throw new DataError(`${dir}: not a checkpoint (lacks ${file})`);
  const bytes = readFileSync(path);
  if (bytes.length !== entry.bytes || sha256(bytes) !== entry.sha256) {
    throw new DataError(
      `${path}: ${bytes.length} bytes that do not match the ${entry.bytes} bytes and SHA-256 recorded in ${CHECKPOINT_STATE}`,
    );
  }
  return decodeSafetensors(bytes, path);
}

/**
 * Reads a checkpoint folder (or a training output folder with `checkpoint`): every listed
 * file must match its recorded size and SHA-256 (first layout: the weights and the state
 * must name the same epoch).
 * @param path - checkpoint folder or training output folder
 * @example
 * const { tensors, state } = loadCheckpoint('runs/vit');
 */
export function loadCheckpoint(path: string): LoadedCheckpoint {
  const dir = resolveCheckpointDir(path);
  const lacking = [CHECKPOINT_WEIGHTS, CHECKPOINT_STATE].filter((f) => !existsSync(join(dir, f)));
  if (lacking.length) {
    throw new DataError(`${dir}: not a checkpoint (lacks ${lacking.join(' and ')})`);
  }
  const state = readState(dir);
  if ((state.format ?? 1) < 2) {
    const weightsPath = join(dir, CHECKPOINT_WEIGHTS);
    const { tensors, metadata } = decodeSafetensors(readFileSync(weightsPath), weightsPath);
    if (metadata.epoch !== String(state.epoch)) {
      throw new DataError(
        `${dir}: weights are from epoch ${metadata.epoch}, state from epoch ${state.epoch} (interrupted write?)`,
      );
    }
    return { tensors, state, dir, extra: {}, optimizers: {} };
  }
  const files = state.files!;
  const weights = readListed(dir, CHECKPOINT_WEIGHTS, files[CHECKPOINT_WEIGHTS]!);
  const opt = files[CHECKPOINT_OPTIMIZER]
    ? readListed(dir, CHECKPOINT_OPTIMIZER, files[CHECKPOINT_OPTIMIZER])
    : { tensors: new Map<string, Tensor>(), metadata: {} };
  const extra: Record<string, Map<string, Tensor>> = {};
  for (const [file, entry] of Object.entries(files)) {
    if (file === CHECKPOINT_WEIGHTS || file === CHECKPOINT_OPTIMIZER) continue;
    extra[file.replace(/\.safetensors$/, '')] = readListed(dir, file, entry).tensors;
  }
  return {
    tensors: weights.tensors,
    state,
    dir,
    extra,
    optimizers: decodeOptimizers(opt.tensors, opt.metadata, join(dir, CHECKPOINT_OPTIMIZER)),
  };
}
