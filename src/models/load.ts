import { existsSync } from 'node:fs';
import { ModelError, UsageError } from '../util/errors.js';
import type { Model } from '../onnx/ir.js';
import { readModel } from '../onnx/serialize.js';
import { buildBackbone, getPreset, presetNames } from './registry.js';

/**
 * Whether a model argument names a file (an existing path, or anything ending in `.onnx`)
 * rather than a preset: such an argument is an input path that no output may overwrite.
 * @param arg - the argument as given
 */
export function isModelFile(arg: string): boolean {
  return arg.endsWith('.onnx') || existsSync(arg);
}

/**
 * How messages name a model argument: the file as given, or `preset NAME`.
 * @param arg - a file path or a preset name
 */
export function modelSource(arg: string): string {
  return isModelFile(arg) ? arg : `preset ${arg}`;
}

/**
 * Resolves a model argument: an `.onnx` file, or a preset name (randomly initialised
 * evaluation graph, useful for inspecting architectures).
 * @param arg - a file path or a preset name (`vit-tiny-fmnist`)
 * @param seed - initialisation seed of a preset
 * @returns the model and how messages name it (`m.onnx`, `preset vit-tiny-fmnist`)
 * @example
 * const { model, source } = await loadModelArg('model.onnx');
 */
export async function loadModelArg(
  arg: string,
  seed = 0,
): Promise<{ model: Model; source: string }> {
  if (isModelFile(arg)) {
    if (!existsSync(arg)) throw new ModelError(`model file not found: ${arg}`);
    return { model: await readModel(arg), source: modelSource(arg) };
  }
  if (presetNames().includes(arg)) {
    return {
      model: buildBackbone(getPreset(arg), 'eval', seed).b.build().model,
      source: modelSource(arg),
    };
  }
  throw new UsageError(
    `'${arg}' is neither a file nor a model preset (${presetNames().join(', ')})`,
  );
}
