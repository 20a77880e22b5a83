// Loading weights by name (timm / torchvision names) and strict checks, on small models; the
// full-size timm ViT-S/16 case is in weights-vit-small.e2e.test.ts (end to end).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { globMatch } from '../../src/util/glob.js';
import { DataError } from '../../src/util/errors.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { getPreset } from '../../src/models/registry.js';
import type { ModelDef } from '../../src/models/types.js';
import {
  initialWeights,
  loadWeights,
  modelWithWeights,
  saveWeights,
} from '../../src/models/weights.js';
import { float32 } from '../../src/onnx/tensor.js';
import type { ParamStore } from '../../src/models/params.js';
import { Rng } from '../../src/util/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'denoiserep-weights-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('weights by name', () => {
  test('globs match dotted names', () => {
    assert.ok(globMatch('head.*', 'head.weight'));
    assert.ok(!globMatch('head.*', 'heads.weight'));
    assert.ok(globMatch('*.num_batches_tracked', 'layer1.0.bn1.num_batches_tracked'));
    assert.ok(!globMatch('blocks.?.mlp.*', 'blocks.10.mlp.fc1.weight'));
  });

  test('one missing and one mis-shaped tensor: a DataError naming both and the file', () => {
    const def = getPreset('vit-micro');
    const good = join(dir, 'micro.safetensors');
    saveWeights(good, initialWeights(def));
    const { tensors } = readSafetensors(good);
    tensors.delete('blocks.1.mlp.fc2.bias');
    tensors.set('pos_embed', float32([1, 4, 16], new Float32Array(64)));
    tensors.set('blocks.0.attn.qkv.weight', float32([48, 15], new Float32Array(48 * 15)));
    const bad = join(dir, 'micro-bad.safetensors');
    writeSafetensors(bad, tensors);
    assert.throws(
      () => loadWeights(def, bad),
      (err: unknown) => {
        assert.ok(err instanceof DataError);
        assert.match(err.message, /micro-bad\.safetensors/);
        assert.match(err.message, /missing 1: blocks\.1\.mlp\.fc2\.bias/);
        assert.match(err.message, /pos_embed \(expected \[1, 5, 16\], got \[1, 4, 16\]\)/);
        assert.match(
          err.message,
          /blocks\.0\.attn\.qkv\.weight \(expected \[48, 16\], got \[48, 15\]\)/,
        );
        return true;
      },
    );
  });

  test('torchvision num_batches_tracked is harmless; other unexpected keys fail unless ignored', () => {
    const def = getPreset('resnet-micro');
    const file = join(dir, 'resnet.safetensors');
    const src = randomStore(def, 5);
    const tensors = src.toTensors();
    tensors.set('bn1.num_batches_tracked', {
      dtype: 'int64',
      dims: [],
      data: new BigInt64Array([3n]),
    });
    writeSafetensors(file, tensors);
    const { store, report } = loadWeights(def, file);
    assert.deepEqual(report.skipped, ['bn1.num_batches_tracked']);
    assert.deepEqual(store.get('bn1.running_var').data, src.get('bn1.running_var').data);

    tensors.set('extra.weight', float32([2], [1, 2]));
    writeSafetensors(file, tensors);
    assert.throws(() => loadWeights(def, file), /unexpected 1: extra\.weight/);
    assert.deepEqual(loadWeights(def, file, { strict: false }).report.skipped.sort(), [
      'bn1.num_batches_tracked',
      'extra.weight',
    ]);
  });

  test('ignore head.* loads a backbone trained with another number of classes', () => {
    const five = getPreset('resnet-micro', { numClasses: 5 });
    const file = join(dir, 'five.safetensors');
    const src = randomStore(five, 9);
    saveWeights(file, src);
    const three = getPreset('resnet-micro', { numClasses: 3 });
    assert.throws(() => loadWeights(three, file), /fc\.weight \(expected \[3, 8\], got \[5, 8\]\)/);
    const { store, report } = loadWeights(three, file, { ignore: ['fc.*'], seed: 1 });
    assert.deepEqual(report.kept.sort(), ['fc.bias', 'fc.weight']);
    assert.deepEqual(
      store.get('layer2.0.conv1.weight').data,
      src.get('layer2.0.conv1.weight').data,
    );
    assert.deepEqual(store.get('fc.weight').shape, [3, 8]);
    // The model with the loaded values builds and its head is the seeded one.
    const m = modelWithWeights(three, store);
    assert.deepEqual(m.graph.initializers.get('fc.weight')!.dims, [3, 8]);
  });
});

/** A model's parameters and buffers set to seeded random values (not its initial ones). */
function randomStore(def: ModelDef, seed: number): ParamStore {
  const store = initialWeights(def);
  const rng = new Rng(seed);
  for (const p of store.entries()) {
    rng.fillNormal(p.data, 0, 0.5);
    if (p.name.endsWith('running_var')) p.data.forEach((v, i) => (p.data[i] = 1 + Math.abs(v)));
  }
  return store;
}
