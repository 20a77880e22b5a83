import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { Tensor } from '../onnx/tensor.js';
import { writeJsonAtomic } from '../util/atomic-write.js';
import type { OptimizerState } from './optim.js';
import type { ParamStore } from './params.js';

/** What a checkpoint records besides the weights. */
export interface CheckpointState {
  preset: string;
  config: unknown;
  /** Last completed epoch (0-based). */
  epoch: number;
  optimizer: OptimizerState;
  history: unknown[];
}

/**
 * Writes a checkpoint folder: `weights.safetensors` (parameters and buffers, tagged with
 * the epoch) then `state.json`, each atomically (temp file + rename). If a crash comes
 * between the two renames, the epochs of the two files differ and loading fails loudly.
 */
export function saveCheckpoint(dir: string, store: ParamStore, state: CheckpointState): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, 'weights.safetensors'), store.toTensors(), {
    epoch: String(state.epoch),
  });
  writeJsonAtomic(join(dir, 'state.json'), state);
}

/** Reads a checkpoint folder; the weights and the state must name the same epoch. */
export function loadCheckpoint(dir: string): {
  tensors: Map<string, Tensor>;
  state: CheckpointState;
} {
  const statePath = join(dir, 'state.json');
  const weightsPath = join(dir, 'weights.safetensors');
  if (!existsSync(statePath) || !existsSync(weightsPath)) {
    throw new DataError(`${dir}: not a checkpoint (needs weights.safetensors and state.json)`);
  }
  let state: CheckpointState;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as CheckpointState;
  } catch (err) {
    throw new DataError(`${statePath}: not valid JSON`, { cause: err });
  }
  const { tensors, metadata } = readSafetensors(weightsPath);
  if (metadata.epoch !== String(state.epoch)) {
    throw new DataError(
      `${dir}: weights are from epoch ${metadata.epoch}, state from epoch ${state.epoch} (interrupted write?)`,
    );
  }
  return { tensors, state };
}
