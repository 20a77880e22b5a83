// Loading weights by name (timm / torchvision names), strict checks, ONNX export.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { globMatch } from '../../src/util/glob.js';
import { DataError } from '../../src/util/errors.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { getPreset } from '../../src/models/registry.js';
import { INPUT_NAME, type ModelDef } from '../../src/models/types.js';
import {
  exportOnnx,
  initialWeights,
  loadWeights,
  modelWithWeights,
  saveWeights,
} from '../../src/models/weights.js';
import { readModel } from '../../src/onnx/serialize.js';
import { float32, type Tensor } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import type { ParamStore } from '../../src/models/params.js';
import { Rng } from '../../src/util/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'denoiserep-weights-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The state dict of timm's vit_small_patch16_224, written out from timm's module layout
 * (not from this project's model) so that the test checks the naming contract.
 */
function timmVitSmallShapes(): Map<string, number[]> {
  const d = 384;
  const s = new Map<string, number[]>([
    ['cls_token', [1, 1, d]],
    ['pos_embed', [1, 197, d]],
    ['patch_embed.proj.weight', [d, 3, 16, 16]],
    ['patch_embed.proj.bias', [d]],
  ]);
  for (let i = 0; i < 12; i++) {
    const p = `blocks.${i}`;
    s.set(`${p}.norm1.weight`, [d]).set(`${p}.norm1.bias`, [d]);
    s.set(`${p}.attn.qkv.weight`, [3 * d, d]).set(`${p}.attn.qkv.bias`, [3 * d]);
    s.set(`${p}.attn.proj.weight`, [d, d]).set(`${p}.attn.proj.bias`, [d]);
    s.set(`${p}.norm2.weight`, [d]).set(`${p}.norm2.bias`, [d]);
    s.set(`${p}.mlp.fc1.weight`, [4 * d, d]).set(`${p}.mlp.fc1.bias`, [4 * d]);
    s.set(`${p}.mlp.fc2.weight`, [d, 4 * d]).set(`${p}.mlp.fc2.bias`, [d]);
  }
  s.set('norm.weight', [d]).set('norm.bias', [d]);
  s.set('head.weight', [1000, d]).set('head.bias', [1000]);
  return s;
}

function randomTensors(shapes: Map<string, number[]>, seed: number): Map<string, Tensor> {
  const rng = new Rng(seed);
  const out = new Map<string, Tensor>();
  for (const [name, dims] of shapes) {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    // Small weights (uniform, cheaper to draw than normal for 22M values) keep the 12
    // random blocks' activations in a sane range; norm scales near 1.
    const isScale = /norm[12]?\.weight$/.test(name);
    rng.fillUniform(data, isScale ? 0.9 : -0.04, isScale ? 1.1 : 0.04);
    out.set(name, float32(dims, data));
  }
  return out;
}

describe('weights by name', () => {
  test('globs match dotted names', () => {
    assert.ok(globMatch('head.*', 'head.weight'));
    assert.ok(!globMatch('head.*', 'heads.weight'));
    assert.ok(globMatch('*.num_batches_tracked', 'layer1.0.bn1.num_batches_tracked'));
    assert.ok(!globMatch('blocks.?.mlp.*', 'blocks.10.mlp.fc1.weight'));
  });

  test('a timm vit_small_patch16_224 safetensors file loads, exports to ONNX and runs', async () => {
    const def = getPreset('vit-s16');
    const file = join(dir, 'vit_small.safetensors');
    const tensors = randomTensors(timmVitSmallShapes(), 7);
    writeSafetensors(file, tensors);
    const { store, report } = loadWeights(def, file);
    assert.equal(report.loaded.length, tensors.size);
    assert.deepEqual(
      store.get('blocks.3.attn.qkv.weight').data,
      tensors.get('blocks.3.attn.qkv.weight')!.data,
    );

    const onnxPath = join(dir, 'vit-s16.onnx');
    const inMemory = exportOnnx(def, store, onnxPath);
    const fromFile = await readModel(onnxPath);
    assert.deepEqual(
      fromFile.graph.initializers.get('pos_embed')!.data,
      tensors.get('pos_embed')!.data,
    );
    const x = float32(
      [1, 3, 224, 224],
      new Rng(3).fillUniform(new Float32Array(3 * 224 * 224), 0, 1),
    );
    const run = async (m: typeof inMemory) => {
      const s = await Session.create(m, { threads: 2 });
      const out = await s.run({ [INPUT_NAME]: x });
      await s.release();
      return out.logits!;
    };
    const a = await run(fromFile);
    const b = await run(inMemory);
    assert.deepEqual(a.dims, [1, 1000]);
    assert.ok(Array.from(a.data as Float32Array).every(Number.isFinite));
    assert.deepEqual(a.data, b.data);
    // The logits depend on the loaded head: a different head gives different logits.
    const std = Math.sqrt(Array.from(a.data as Float32Array).reduce((s, v) => s + v * v, 0) / 1000);
    assert.ok(std > 1e-4, `logit scale ${std}`);
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
