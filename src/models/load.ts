import { existsSync } from 'node:fs';
import { ModelError, UsageError } from '../util/errors.js';
import type { Model } from '../onnx/ir.js';
import { readModel } from '../onnx/serialize.js';
import { measureShapes } from '../runtime/measure-shapes.js';
import { buildBackbone, getPreset, presetNames } from './registry.js';
import { isZooRef, loadZooModel } from './zoo.js';

/**
 * Whether a model argument names a file (an existing path, or anything ending in `.onnx`)
 * rather than a preset: such an argument is an input path that no output may overwrite.
 * @param arg - the argument as given
 */
export function isModelFile(arg: string): boolean {
  return !isZooRef(arg) && (arg.endsWith('.onnx') || existsSync(arg));
}

/**
 * How messages name a model argument: the file or zoo reference as given, or `preset NAME`.
 * @param arg - a file path or a preset name
 */
export function modelSource(arg: string): string {
  return isModelFile(arg) || isZooRef(arg) ? arg : `preset ${arg}`;
}

/**
 * Resolves a model argument: an `.onnx` file (its values' types completed by
 * {@link measureShapes} where the shape rules stop), a shipped model `zoo:<preset>`
 * (weights checked against their manifest's sha256), or a preset name (randomly
 * initialised evaluation graph, useful for inspecting architectures).
 * @param arg - a file path, `zoo:<preset>` or a preset name (`vit-tiny-fmnist`)
 * @param seed - initialisation seed of a preset
 * @returns the model and how messages name it (`m.onnx`, `preset vit-tiny-fmnist`)
 * @example
 * const { model, source } = await loadModelArg('model.onnx');
 */
export async function loadModelArg(
  arg: string,
  seed = 0,
): Promise<{ model: Model; source: string }> {
  if (isZooRef(arg)) {
    const z = loadZooModel(arg);
    return { model: z.model, source: z.source };
  }
  if (isModelFile(arg)) {
    if (!existsSync(arg)) throw new ModelError(`model file not found: ${arg}`);
    // Values after ops without a shape rule (contrib ops, model functions) get their
    // types from ONNX Runtime; a model whose types all infer is not run.
    const { model } = await measureShapes(await readModel(arg), { source: arg });
    return { model, source: modelSource(arg) };
  }
  if (presetNames().includes(arg)) {
    return {
      model: buildBackbone(getPreset(arg), 'eval', seed).b.build().model,
      source: modelSource(arg),
    };
  }
  throw new UsageError(
    `'${arg}' is neither a file, a zoo:<preset> reference nor a model preset (${presetNames().join(', ')})`,
  );
}
