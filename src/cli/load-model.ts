import { existsSync } from 'node:fs';
import { UsageError } from '../util/errors.js';
import { buildBackbone, getPreset, presetNames } from '../models/registry.js';
import type { Model } from '../onnx/ir.js';
import { readModel } from '../onnx/serialize.js';

/**
 * Resolves a model argument: an `.onnx` file, or a preset name (randomly initialised
 * evaluation graph, useful for inspecting architectures).
 */
export async function loadModelArg(
  arg: string,
  seed = 0,
): Promise<{ model: Model; source: string }> {
  if (arg.endsWith('.onnx') || existsSync(arg)) {
    if (!existsSync(arg)) throw new UsageError(`model file not found: ${arg}`);
    return { model: await readModel(arg), source: arg };
  }
  if (presetNames().includes(arg)) {
    return {
      model: buildBackbone(getPreset(arg), 'eval', seed).b.build().model,
      source: `preset ${arg}`,
    };
  }
  throw new UsageError(
    `'${arg}' is neither a file nor a model preset (${presetNames().join(', ')})`,
  );
}
