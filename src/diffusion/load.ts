import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ParamStore } from '../models/params.js';
import { getDiffusionPreset, isDiffusionPreset } from '../models/registry.js';
import { buildUNet } from '../models/unet-graph.js';
import type { UNetDef } from '../models/unet.js';
import { readModel } from '../onnx/serialize.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { checkedZooWeights, isZooRef, ZOO_PREFIX, type ZooProbeCell } from '../models/zoo.js';
import { DataError, ModelError } from '../util/errors.js';

/** The file a DDPM pretraining run exports: the U-Net with its EMA weights. */
export const DDPM_MODEL_FILE = 'model.onnx';

/** A trained U-Net: its definition and weights. */
export interface LoadedUNet {
  def: UNetDef;
  values: ParamStore;
  /** What was read (a file, or a checkpoint and which weights). */
  source: string;
  /** A zoo entry's default probe cell (its manifest's `probe`). */
  probeCell?: ZooProbeCell;
}

/**
 * Loads a trained U-Net for sampling or probing from
 * - an `.onnx` file exported by `denoiserep pretrain` (its `preset` metadata names the
 *   architecture; its initializers are the EMA weights),
 * - a pretraining output folder (its `model.onnx` when present, else its checkpoint),
 * - a checkpoint folder (the EMA tensors when it holds them, else the raw weights),
 * - `zoo:<preset>`, a shipped U-Net (its sha256 checked against the manifest).
 * @param path - file or folder
 * @example
 * const { def, values } = await loadDiffusionModel('runs/ddpm');
 */
export async function loadDiffusionModel(path: string): Promise<LoadedUNet> {
  if (isZooRef(path)) {
    const { manifest, tensors } = checkedZooWeights(path);
    const def = presetOf(manifest.preset, `${ZOO_PREFIX}${manifest.preset}`);
    const values = pick(def, ParamStore.fromTensors(tensors), path);
    return { def, values, source: path, ...(manifest.probe && { probeCell: manifest.probe }) };
  }
  if (!existsSync(path)) throw new ModelError(`no such model or run folder: ${path}`);
  if (statSync(path).isDirectory()) {
    const exported = join(path, DDPM_MODEL_FILE);
    if (existsSync(exported)) return loadDiffusionModel(exported);
    const ck = loadCheckpoint(path);
    const def = presetOf(ck.state.preset, ck.dir);
    // Checkpoints that keep an EMA copy hold it as an extra tensor set named 'ema'.
    const ema = ck.extra.ema;
    const values = pick(def, ParamStore.fromTensors(ema ?? ck.tensors), ck.dir);
    return { def, values, source: `${ck.dir} (${ema ? 'EMA' : 'raw'} weights)` };
  }
  const model = await readModel(path);
  const def = presetOf(model.metadata.preset, path);
  const values = pick(
    def,
    ParamStore.fromTensors(
      new Map([...model.graph.initializers].filter(([, t]) => t.dtype === 'float32')),
    ),
    path,
  );
  return { def, values, source: path };
}

function presetOf(preset: string | undefined, source: string): UNetDef {
  if (!preset || !isDiffusionPreset(preset)) {
    throw new DataError(
      `${source}: not a diffusion U-Net of this project (preset '${preset ?? 'none'}')`,
    );
  }
  return getDiffusionPreset(preset);
}

/** The parameters `def` needs, checked by name and shape. */
function pick(def: UNetDef, all: ParamStore, source: string): ParamStore {
  const built = buildUNet(def, 'eval').b.build();
  const out = new ParamStore();
  const problems: string[] = [];
  for (const n of [...built.params, ...built.buffers]) {
    const want = built.model.graph.initializers.get(n)!.dims;
    if (!all.has(n)) {
      problems.push(`${n} missing`);
      continue;
    }
    const p = all.get(n);
    if (p.shape.join(',') !== want.join(','))
      problems.push(`${n} is [${p.shape}], expected [${want}]`);
    else out.set(n, p.shape, p.data);
  }
  if (problems.length) {
    throw new DataError(
      `${source}: weights do not fit ${def.name}: ${problems.slice(0, 5).join('; ')}`,
    );
  }
  return out;
}
