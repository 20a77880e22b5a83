// DenoiseRep on real torch.onnx exports (PyTorch 1.13; made by scripts/torch-fixtures.py):
// a timm-shaped ViT at opsets 17 and 13 (Linear as MatMul with a pre-transposed anonymous
// weight, Gemm head, LayerNormalization or its decomposition, shape subgraphs, dynamic
// batch), a torchvision-shaped ResNet whose BatchNorms torch folded into the convs, and
// at opset 17 MobileNetV3-, ConvNeXt-, Swin- and FPN-like models, an untrained
// nn.TransformerEncoder (equal initializers merged behind Identity nodes) and a model
// with tied Linear weights (both with and without untie). Each loads and runs as PyTorch
// computed it, gets module names from the export's scoped node and parameter names,
// lists the layers it skips with their reasons, and fuses to a graph with the same nodes
// in the same order (only copies of shared tensors added), equal to the unfused model
// run with denoising steps.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { collectMoments, fitClosedForm } from '../../src/denoise/fit.js';
import { fuseModel, fuseWithReport } from '../../src/denoise/fuse.js';
import { initDenoisers, planConversion } from '../../src/denoise/plan.js';
import { scopedModuleName } from '../../src/denoise/select.js';
import { compareTopology, initializerCopies } from '../../src/denoise/verify.js';
import type { Model } from '../../src/onnx/ir.js';
import { readModel, writeModel } from '../../src/onnx/serialize.js';
import { float32 } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/rng.js';
import { assertFusionVerified, relErr } from './helpers.js';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'torch');
const tmp = mkdtempSync(join(tmpdir(), 'denoiserep-torch-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Fixture {
  opset: number;
  inputShape: number[];
  input: number[];
  outputShape: number[];
  output: number[];
}

interface Case {
  name: string;
  untie?: boolean;
  layers: string[] | number;
  /** Skipped candidates as [name, code], in forward order. */
  skipped: [string, string][];
}

/** The two activation x activation MatMuls of each of two attention blocks. */
const attention = (prefix: string): [string, string][] =>
  [0, 1].flatMap((i): [string, string][] => [
    [`${prefix}.${i}.attn`, 'dynamic-weight'],
    [`${prefix}.${i}.attn#1`, 'dynamic-weight'],
  ]);
const selfAttention = (i: number): [string, string][] => [
  [`encoder.layers.${i}.self_attn`, 'dynamic-weight'],
  [`encoder.layers.${i}.self_attn#1`, 'dynamic-weight'],
];

const CASES: Case[] = [
  {
    name: 'vit-opset17',
    layers: [
      'proj',
      'blocks.0.attn.qkv',
      'blocks.0.attn.proj',
      'blocks.0.fc1',
      'blocks.0.fc2',
      'blocks.1.attn.qkv',
      'blocks.1.attn.proj',
      'blocks.1.fc1',
      'blocks.1.fc2',
      'head',
    ],
    skipped: attention('blocks'),
  },
  { name: 'vit-opset13', layers: 10, skipped: attention('blocks') },
  {
    name: 'resnet-opset13',
    layers: [
      'conv1',
      'layer1.conv1',
      'layer1.conv2',
      'layer2.conv1',
      'layer2.conv2',
      'layer2.down.0',
      'fc',
    ],
    skipped: [],
  },
  {
    name: 'mobilenetv3-opset17',
    layers: [
      'stem.0',
      'block.expand.0',
      'block.se.fc1',
      'block.se.fc2',
      'block.project.0',
      'head.0',
      'head.2',
    ],
    skipped: [['block.dw.0', 'depthwise-conv']],
  },
  {
    name: 'convnext-opset17',
    layers: [
      'stem',
      'stages.0.pwconv1',
      'stages.0.pwconv2',
      'stages.1.pwconv1',
      'stages.1.pwconv2',
      'head',
    ],
    skipped: [
      ['stages.0.dwconv', 'depthwise-conv'],
      ['stages.1.dwconv', 'depthwise-conv'],
    ],
  },
  {
    name: 'swin-opset17',
    layers: [
      'patch_embed',
      'layers.0.attn.qkv',
      'layers.0.attn.proj',
      'layers.0.mlp.0',
      'layers.0.mlp.2',
      'layers.1.attn.qkv',
      'layers.1.attn.proj',
      'layers.1.mlp.0',
      'layers.1.mlp.2',
      'head',
    ],
    skipped: attention('layers'),
  },
  {
    name: 'fpn-opset17',
    layers: ['c1', 'c2', 'c3', 'lat3', 'lat2', 'lat1', 'out1', 'out2', 'head'],
    skipped: [],
  },
  {
    // The two layers are deep copies: every tensor is merged with its twin. Those behind
    // exporter names (the pre-transposed MatMul weights) count as tied and are skipped;
    // out_proj's Gemm weights keep their own names: separate parameters, both fused.
    name: 'encoder-opset17',
    layers: [
      'embed',
      'encoder.layers.0.self_attn.out_proj',
      'encoder.layers.1.self_attn.out_proj',
      'head',
    ],
    skipped: [0, 1].flatMap((i): [string, string][] => [
      [`encoder.layers.${i}.self_attn.in_proj`, 'tied'],
      ...selfAttention(i),
      [`encoder.layers.${i}.linear1`, 'tied'],
      [`encoder.layers.${i}.linear2`, 'tied'],
    ]),
  },
  {
    name: 'encoder-opset17',
    untie: true,
    layers: [
      'embed',
      ...[0, 1].flatMap((i) =>
        ['self_attn.in_proj', 'self_attn.out_proj', 'linear1', 'linear2'].map(
          (l) => `encoder.layers.${i}.${l}`,
        ),
      ),
      'head',
    ],
    skipped: [...selfAttention(0), ...selfAttention(1)],
  },
  {
    name: 'tied-opset17',
    layers: ['embed', 'head'],
    skipped: [
      ['enc', 'tied'],
      ['dec', 'tied'],
      ['proj_a', 'tied'],
      ['proj_b', 'tied'],
    ],
  },
  {
    name: 'tied-opset17',
    untie: true,
    layers: ['embed', 'enc', 'dec', 'proj_a', 'proj_b', 'head'],
    skipped: [],
  },
];

/** Same nodes in the same order; initializers kept, only copies of shared tensors added. */
function sameStructure(a: Model, b: Model): Map<string, string> {
  assert.deepEqual(
    b.graph.nodes.map((n) => [n.name, n.opType, n.outputs]),
    a.graph.nodes.map((n) => [n.name, n.opType, n.outputs]),
  );
  const copies = initializerCopies(a, b);
  assert.deepEqual(
    [...b.graph.initializers].filter(([k]) => !copies.has(k)).map(([k, t]) => [k, t.dtype, t.dims]),
    [...a.graph.initializers].map(([k, t]) => [k, t.dtype, t.dims]),
  );
  assert.equal(copies.size, b.graph.initializers.size - a.graph.initializers.size);
  assert.deepEqual(compareTopology(a, b), []);
  return copies;
}

for (const c of CASES) {
  const mode = { filter: 'all', source: c.name, untie: c.untie };
  describe(`torch.onnx export: ${c.name}${c.untie ? ' (untie)' : ''}`, () => {
    const fx = JSON.parse(readFileSync(join(fixtures, `${c.name}.json`), 'utf8')) as Fixture;
    const input = { input: float32(fx.inputShape, Float32Array.from(fx.input)) };

    test('loads and computes what PyTorch computed', async () => {
      const model = await readModel(join(fixtures, `${c.name}.onnx`));
      const s = await Session.create(model, { threads: 1 });
      const y = (await s.run(input)).logits!;
      await s.release();
      assert.deepEqual(y.dims, fx.outputShape);
      assert.ok(relErr(y.data as Float32Array, fx.output) < 1e-5);
      const plan = planConversion(model.graph, mode);
      const names = plan.layers.map((p) => p.layer.name);
      if (typeof c.layers === 'number') assert.equal(names.length, c.layers);
      else assert.deepEqual(names, c.layers);
      assert.deepEqual(
        plan.skipped.map((s) => [s.name, s.code]),
        c.skipped,
      );
      if (c.name.startsWith('vit')) {
        // Scoped names make name globs work on exports.
        const fc1 = planConversion(model.graph, { filter: 'blocks.*.fc1', source: c.name });
        assert.deepEqual(
          fc1.layers.map((p) => [p.layer.name, p.t]),
          [
            ['blocks.0.fc1', 2],
            ['blocks.1.fc1', 1],
          ],
        );
      }
    });

    test('closed-form fit on its own features fuses exactly, keeping every node', async () => {
      const model = await readModel(join(fixtures, `${c.name}.onnx`));
      const plan = planConversion(model.graph, mode);
      const rng = new Rng(3);
      const [, ch, h, w] = fx.inputShape as [number, number, number, number];
      const batches = Array.from({ length: 4 }, () => ({
        input: float32([32, ch, h, w], rng.fillUniform(new Float32Array(32 * ch * h * w), 0, 1)),
      }));
      const stats = await collectMoments(model, plan, batches, { session: { threads: 1 } });
      const { values } = await fitClosedForm(plan, stats, { threads: 1 });
      const { model: fused, report: fuse } = fuseWithReport(model, plan, values);
      const copies = sameStructure(model, fused);
      assert.deepEqual([...copies.keys()].sort(), fuse.copies.map((k) => k.copy).sort());
      const report = await assertFusionVerified({
        original: model,
        fused,
        plan,
        values,
        inputs: input,
      });
      assert.equal(report.layers.length, plan.layers.length);
    });

    test('strong random denoisers: fused equals denoised to 1e-5, and the written file runs in ORT', async () => {
      const model = await readModel(join(fixtures, `${c.name}.onnx`));
      const plan = planConversion(model.graph, mode);
      const values = initDenoisers(plan, 5);
      const rng = new Rng(9);
      for (const t of values.values()) rng.fillNormal(t.data as Float32Array, 0, 0.3);
      for (const p of plan.layers) p.coeffs = { ...p.coeffs, c1: 0.2, c3: 1.1 };
      const fused = fuseModel(model, plan, values);
      await assertFusionVerified({
        original: model,
        fused,
        plan,
        values,
        inputs: input,
        tolerance: 1e-5,
      });
      // The fused weights really changed the function.
      const path = join(tmp, `${c.name}${c.untie ? '-untie' : ''}-fused.onnx`);
      writeModel(path, fused);
      const s = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
      const y = (await s.run({ input: new ort.Tensor('float32', input.input.data, fx.inputShape) }))
        .logits!;
      await s.release();
      assert.deepEqual([...y.dims], fx.outputShape);
      assert.ok(relErr(y.data as Float32Array, fx.output) > 1e-3);
      sameStructure(model, await readModel(path));
    });
  });
}

describe('scopedModuleName', () => {
  test('module paths from torch.onnx scoped node names', () => {
    assert.equal(scopedModuleName('/blocks/blocks.0/attn/qkv/MatMul'), 'blocks.0.attn.qkv');
    assert.equal(scopedModuleName('/layer2/down/down.0/Conv'), 'layer2.down.0');
    assert.equal(scopedModuleName('/conv1/Conv'), 'conv1');
    assert.equal(scopedModuleName('/MatMul'), undefined); // no module scope
    assert.equal(scopedModuleName('MatMul_12'), undefined);
    assert.equal(scopedModuleName('/a//MatMul'), undefined);
  });
});
