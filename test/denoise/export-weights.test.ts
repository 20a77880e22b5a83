// Back to PyTorch: export-weights on the real torch.onnx fixtures against the state_dicts
// PyTorch saved beside them (scripts/torch-fixtures.py). Unfused, every exported tensor
// is the state_dict's, bit for bit, and what is missing is exactly what the exporter
// folded away (BatchNorms into convs, buffers, a gathered position-bias table). Fused,
// the names and shapes are the same and each fused layer's weight and bias are what the
// fusion formula gives from the PyTorch weights, computed here independently.
import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exportTorchWeights } from '../../src/denoise/export-weights.js';
import { fuseModel } from '../../src/denoise/fuse.js';
import { fuseConvOutput, fuseLinearInput } from '../../src/denoise/fuse-math.js';
import { initDenoisers, planConversion } from '../../src/denoise/plan.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { readModel } from '../../src/onnx/serialize.js';
import type { Tensor } from '../../src/onnx/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { relErr } from './helpers.js';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'torch');

/** The module prefixes of BatchNorm-folded convs: their conv and norm entries are missing. */
const bnFolded = (mods: [string, string][]) =>
  mods.flatMap(([conv, bn]) => [
    `${conv}.weight`,
    ...['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'].map(
      (k) => `${bn}.${k}`,
    ),
  ]);

const CASES: { name: string; missing: string[]; untie?: boolean }[] = [
  { name: 'vit-opset17', missing: [] },
  { name: 'vit-opset13', missing: [] },
  {
    name: 'resnet-opset13',
    missing: bnFolded([
      ['conv1', 'bn1'],
      ['layer1.conv1', 'layer1.bn1'],
      ['layer1.conv2', 'layer1.bn2'],
      ['layer2.conv1', 'layer2.bn1'],
      ['layer2.conv2', 'layer2.bn2'],
      ['layer2.down.0', 'layer2.down.1'],
    ]),
  },
  {
    name: 'mobilenetv3-opset17',
    missing: bnFolded([
      ['stem.0', 'stem.1'],
      ['block.expand.0', 'block.expand.1'],
      ['block.dw.0', 'block.dw.1'],
      ['block.project.0', 'block.project.1'],
    ]),
  },
  { name: 'convnext-opset17', missing: [] },
  {
    name: 'swin-opset17',
    // The bias table is gathered by a constant index at export (folded), and the
    // index and mask are buffers folded into constants.
    missing: [
      'layers.0.attn.relative_position_bias_table',
      'layers.0.attn.relative_position_index',
      'layers.1.attn_mask',
      'layers.1.attn.relative_position_bias_table',
      'layers.1.attn.relative_position_index',
    ],
  },
  { name: 'fpn-opset17', missing: [] },
  { name: 'encoder-opset17', missing: [], untie: true },
  { name: 'tied-opset17', missing: [], untie: true },
];

function exactlyEqual(a: Tensor, b: Tensor, name: string): void {
  assert.deepEqual(a.dims, b.dims, `${name}: shape`);
  assert.equal(a.dtype, b.dtype, `${name}: dtype`);
  for (let i = 0; i < a.data.length; i++)
    if (a.data[i] !== b.data[i]) assert.fail(`${name}[${i}]: ${a.data[i]} vs ${b.data[i]}`);
}

for (const c of CASES) {
  describe(`export-weights: ${c.name}`, () => {
    const state = () => readSafetensors(join(fixtures, `${c.name}.safetensors`)).tensors;

    test('unfused: the state_dict exactly, less what the exporter folded away', async () => {
      const model = await readModel(join(fixtures, `${c.name}.onnx`));
      const sd = state();
      const r = exportTorchWeights(model);
      for (const [k, t] of r.tensors) {
        const ref = sd.get(k);
        assert.ok(ref, `exported '${k}' is not in the state_dict`);
        exactlyEqual(t, ref, k);
      }
      const missing = [...sd.keys()].filter((k) => !r.tensors.has(k));
      assert.deepEqual(missing.sort(), [...c.missing].sort());
      // Whatever is missing is reported as a constant the exporter made, never invented.
      assert.equal(r.notExported.length > 0, c.missing.length > 0);
      for (const n of r.notExported) assert.match(n.reason, /exporter/);
    });

    test('fused: the same names and shapes, the fused values from the PyTorch weights', async () => {
      const model = await readModel(join(fixtures, `${c.name}.onnx`));
      const sd = state();
      const plan = planConversion(model.graph, { filter: 'all', untie: c.untie });
      const values = initDenoisers(plan, 5);
      const rng = new Rng(9);
      for (const t of values.values()) rng.fillNormal(t.data as Float32Array, 0, 0.3);
      for (const p of plan.layers) p.coeffs = { ...p.coeffs, c1: 0.2, c3: 1.1 };
      const fused = fuseModel(model, plan, values);
      const before = exportTorchWeights(model);
      const after = exportTorchWeights(fused);
      assert.deepEqual(
        [...after.tensors].map(([k, t]) => [k, t.dims]).sort(),
        [...before.tensors].map(([k, t]) => [k, t.dims]).sort(),
      );
      const byNode = new Map(after.layers.map((l) => [l.node, l]));
      const changed = new Set<string>();
      let checked = 0;
      for (const p of plan.layers) {
        const names = byNode.get(p.layer.node.name)!;
        if (!names.weight) continue; // a BatchNorm-folded conv has no PyTorch weight
        const w = sd.get(names.weight)!;
        const b = names.bias ? sd.get(names.bias)! : null;
        const get = (n?: string) => (n ? (values.get(n)!.data as Float32Array) : undefined);
        const expect =
          p.side === 'input'
            ? fuseLinearInput({
                weight: w.data as Float32Array,
                bias: b?.data as Float32Array | undefined,
                inFeatures: p.layer.inFeatures,
                outFeatures: p.layer.outFeatures,
                layout: 'out-in', // nn.Linear
                denoiser: {
                  wd: get(p.names.weight)!,
                  bd: get(p.names.bias) ?? new Float32Array(p.dim),
                  e: get(p.names.embed) ?? new Float32Array(p.dim),
                },
                coeffs: p.coeffs,
              })
            : fuseConvOutput({
                weight: w.data as Float32Array,
                bias: b?.data as Float32Array | undefined,
                outChannels: w.dims[0]!,
                inChannelsPerGroup: w.dims[1]!,
                kernelH: w.dims[2]!,
                kernelW: w.dims[3]!,
                denoiser: {
                  wd: get(p.names.weight)!,
                  c: get(p.names.bias) ?? new Float32Array(p.dim),
                },
                coeffs: p.coeffs,
              });
        const gotW = after.tensors.get(names.weight)!.data as Float32Array;
        assert.ok(
          relErr(gotW, expect.weight) < 1e-6,
          `${names.weight}: ${relErr(gotW, expect.weight)}`,
        );
        assert.ok(relErr(gotW, w.data as Float32Array) > 1e-3, `${names.weight} did not change`);
        changed.add(names.weight);
        if (names.bias) {
          const gotB = after.tensors.get(names.bias)!.data as Float32Array;
          assert.ok(
            relErr(gotB, expect.bias) < 1e-6,
            `${names.bias}: ${relErr(gotB, expect.bias)}`,
          );
          changed.add(names.bias);
        }
        checked++;
      }
      assert.ok(checked >= 1, 'no layer with PyTorch parameters was checked');
      // Everything else is exactly the unfused value (zero biases and LayerNorm weights
      // the exporter merged with fused biases included).
      for (const [k, t] of after.tensors) if (!changed.has(k)) exactlyEqual(t, sd.get(k)!, k);
      if (c.name.startsWith('tied')) {
        assert.ok(after.notes.some((n) => /enc\.weight, dec\.weight .*fusion untied/.test(n)));
        assert.ok(
          after.notes.some((n) => /proj_a\.weight, proj_b\.weight .*fusion untied/.test(n)),
        );
      }
    });
  });
}

describe('export-weights options and errors', () => {
  test('layersOnly keeps the weights and biases of MatMul, Gemm and Conv layers', async () => {
    const model = await readModel(join(fixtures, 'vit-opset17.onnx'));
    const r = exportTorchWeights(model, { layersOnly: true });
    const names = [...r.tensors.keys()].sort();
    assert.equal(names.length, 20); // patch embedding, 4 Linears in each of 2 blocks, head
    for (const n of names)
      assert.match(n, /^(proj|head|blocks\.\d\.(attn\.qkv|attn\.proj|fc1|fc2))\.(weight|bias)$/);
    const qkv = r.exported.find((e) => e.name === 'blocks.0.attn.qkv.weight')!;
    assert.equal(qkv.source, 'layer-weight');
    assert.equal(qkv.transposed, true);
    assert.deepEqual(qkv.dims, [96, 32]);
  });
});
