// The backbone an experiment starts from: a shipped zoo entry (sha256-checked against its
// manifest) or a pretrain output / checkpoint folder, with a hash that identifies its
// weights (so that cached results of another backbone are never reused).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { ParamStore } from '../models/params.js';
import { getPreset } from '../models/registry.js';
import type { ModelDef } from '../models/types.js';
import { modelWithWeights } from '../models/weights.js';
import { isZooRef, loadZooModel, zooEntries, zooRoot } from '../models/zoo.js';
import type { Model } from '../onnx/ir.js';
import { loadCheckpoint, resolveCheckpointDir } from '../train/checkpoint.js';
import { UsageError } from '../util/errors.js';

/** The backbone of an experiment: its preset, weights and where they came from. */
export interface Backbone {
  ref: string;
  def: ModelDef;
  values: ParamStore;
  model: Model;
  /** Hash of the weights (the zoo's sha256, or of the values). */
  identity: string;
  manifestAcc1?: number;
}

/**
 * Loads a backbone: a zoo entry (sha256-checked) or a pretrain checkpoint folder.
 * @param ref - `zoo:<preset>`, a pretrain output folder or a checkpoint folder
 * @param flag - the flag that named it, for messages
 * @throws UsageError when the reference names nothing; DataError for a zoo entry whose
 *   weights do not match their manifest
 */
export function loadBackbone(ref: string, flag = '--backbone'): Backbone {
  if (!ref)
    throw new UsageError(
      `no backbone: the zoo (${zooRoot()}) has no entry; pass ${flag} zoo:<preset> or a pretrain output folder`,
    );
  if (isZooRef(ref)) {
    const z = loadZooModel(ref);
    return {
      ref,
      def: z.def,
      values: z.values,
      model: z.model,
      identity: z.manifest.sha256,
      manifestAcc1: z.manifest.acc1,
    };
  }
  if (!existsSync(ref)) throw new UsageError(`${flag} ${ref}: not zoo:<preset> and no such folder`);
  const ck = loadCheckpoint(resolveCheckpointDir(ref));
  const def = getPreset(ck.state.preset, ck.state.presetOptions ?? {});
  const values = ParamStore.fromTensors(ck.tensors);
  const h = createHash('sha256');
  for (const n of [...values.names()].sort()) {
    h.update(n);
    const d = values.get(n).data;
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return { ref, def, values, model: modelWithWeights(def, values), identity: h.digest('hex') };
}

/** The shipped ViT when the zoo has it, else the first classifier entry, else none. */
export function defaultBackbone(): string {
  const have = zooEntries(zooRoot(), 'backbone');
  if (have.includes('vit-tiny-fmnist')) return 'zoo:vit-tiny-fmnist';
  return have.length ? `zoo:${have[0]}` : '';
}
