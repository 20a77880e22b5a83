import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../util/errors.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { Tensor } from '../onnx/tensor.js';
import { writeJsonAtomic } from '../util/atomic-write.js';
import type { OptimizerState } from './optim.js';
import type { ParamStore } from '../models/params.js';

/** File names inside a checkpoint folder. */
export const CHECKPOINT_WEIGHTS = 'weights.safetensors';
export const CHECKPOINT_STATE = 'state.json';
/** Sub-folder of a training output folder that holds its latest checkpoint. */
export const CHECKPOINT_DIR = 'checkpoint';

/** What a checkpoint records besides the weights. */
export interface CheckpointState {
  preset: string;
  /** Preset options that change shapes (`getPreset(preset, presetOptions)` rebuilds it). */
  presetOptions?: { numClasses: number; bnneck: boolean };
  config: unknown;
  /** Last completed epoch (0-based). */
  epoch: number;
  /** Optimiser steps taken so far (the learning-rate schedule's position). */
  globalStep?: number;
  optimizer: OptimizerState;
  /**
   * Random state: every random draw of epoch e comes from streams forked from
   * `new Rng(seed)` with the label `epoch-e`, so the seed is the whole state at an epoch
   * boundary; `base` is that generator's state, recorded to detect a changed generator.
   */
  rng?: { seed: number; base: readonly (number | null)[] };
  history: unknown[];
}

/**
 * Writes a checkpoint folder: `weights.safetensors` (parameters and buffers, tagged with
 * the epoch) then `state.json`, each atomically (temp file + rename). If a crash comes
 * between the two renames, the epochs of the two files differ and loading fails loudly.
 * @param dir - checkpoint folder (created)
 * @param store - parameters and buffers
 * @param state - epoch, optimiser state, config, history
 * @example
 * saveCheckpoint('runs/vit/checkpoint', store, { preset, config, epoch, optimizer: opt.state(), history });
 */
export function saveCheckpoint(dir: string, store: ParamStore, state: CheckpointState): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, CHECKPOINT_WEIGHTS), store.toTensors(), {
    epoch: String(state.epoch),
    preset: state.preset,
  });
  writeJsonAtomic(join(dir, CHECKPOINT_STATE), state);
}

/**
 * Resolves a checkpoint path: the checkpoint folder itself, or a training output folder
 * holding one in `checkpoint/`.
 */
export function resolveCheckpointDir(path: string): string {
  if (!existsSync(path)) throw new DataError(`no such checkpoint: ${path}`);
  if (!statSync(path).isDirectory()) {
    throw new DataError(
      `${path}: a checkpoint is a folder with ${CHECKPOINT_WEIGHTS} and ${CHECKPOINT_STATE}`,
    );
  }
  const inner = join(path, CHECKPOINT_DIR);
  return !existsSync(join(path, CHECKPOINT_STATE)) && existsSync(inner) ? inner : path;
}

/**
 * Reads a checkpoint folder (or a training output folder with `checkpoint/`); the
 * weights and the state must name the same epoch.
 * @param path - checkpoint folder or training output folder
 * @example
 * const { tensors, state } = loadCheckpoint('runs/vit');
 */
export function loadCheckpoint(path: string): {
  tensors: Map<string, Tensor>;
  state: CheckpointState;
  dir: string;
} {
  const dir = resolveCheckpointDir(path);
  const statePath = join(dir, CHECKPOINT_STATE);
  const weightsPath = join(dir, CHECKPOINT_WEIGHTS);
  const lacking = [CHECKPOINT_WEIGHTS, CHECKPOINT_STATE].filter((f) => !existsSync(join(dir, f)));
  if (lacking.length) {
    throw new DataError(`${dir}: not a checkpoint (lacks ${lacking.join(' and ')})`);
  }
  let state: CheckpointState;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as CheckpointState;
  } catch (err) {
    throw new DataError(`${statePath}: not valid JSON`, { cause: err });
  }
  const bad = (
    [
      ['preset', typeof state?.preset === 'string'],
      ['epoch', Number.isInteger(state?.epoch)],
      ['optimizer', typeof state?.optimizer === 'object' && state.optimizer !== null],
      ['history', Array.isArray(state?.history)],
    ] as const
  )
    .filter(([, ok]) => !ok)
    .map(([k]) => k);
  if (bad.length) throw new DataError(`${statePath}: missing or invalid ${bad.join(', ')}`);
  const { tensors, metadata } = readSafetensors(weightsPath);
  if (metadata.epoch !== String(state.epoch)) {
    throw new DataError(
      `${dir}: weights are from epoch ${metadata.epoch}, state from epoch ${state.epoch} (interrupted write?)`,
    );
  }
  return { tensors, state, dir };
}
