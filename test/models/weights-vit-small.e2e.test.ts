// A full-size timm checkpoint by name: vit_small_patch16_224 (22M parameters) loaded from
// safetensors, exported to ONNX and run at 224x224. End-to-end (npm run test:e2e): the
// small-model cases of the same loader are in weights.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { getPreset } from '../../src/models/registry.js';
import { INPUT_NAME } from '../../src/models/types.js';
import { exportOnnx, loadWeights } from '../../src/models/weights.js';
import { readModel } from '../../src/onnx/serialize.js';
import { float32, type Tensor } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'denoiserep-vit-small-'));
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
describe('weights by name, full size', () => {
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
});
