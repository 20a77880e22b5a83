// Fusion on whole ONNX graphs: the fused model (same topology, new weights) against the
// trained unfused model run with deterministic denoising steps.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuseModel } from '../../src/denoise/fuse.js';
import { initDenoisers, planConversion } from '../../src/denoise/plan.js';
import { compareTopology, verifyFusion } from '../../src/denoise/verify.js';
import { buildBackbone, getPreset } from '../../src/models/registry.js';
import { GraphBuilder, type Value } from '../../src/onnx/builder.js';
import type { Model } from '../../src/onnx/ir.js';
import { float32, type Tensor } from '../../src/onnx/tensor.js';
import { Rng } from '../../src/util/rng.js';

/** Denoisers with large random weights so that fusion errors cannot hide below tolerance. */
function strongDenoisers(model: Model, filter = 'all') {
  const plan = planConversion(model.graph, { filter });
  const values = initDenoisers(plan, 7);
  const rng = new Rng(11);
  for (const t of values.values()) rng.fillNormal(t.data as Float32Array, 0, 1);
  // Large c1 makes the denoising step a big change of the weights (c1 ~ 0.01 otherwise).
  for (const p of plan.layers) {
    p.coeffs = { ...p.coeffs, c1: 0.3, c3: 1.2 };
  }
  return { plan, values };
}

function randomInput(dims: number[], seed = 1): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return float32(dims, new Rng(seed).fillNormal(new Float32Array(n)));
}

async function checkFusion(
  model: Model,
  inputs: Record<string, Tensor>,
  filter = 'all',
  expectLayers?: number,
) {
  const { plan, values } = strongDenoisers(model, filter);
  if (expectLayers !== undefined) assert.equal(plan.layers.length, expectLayers);
  const fused = fuseModel(model, plan, values);
  const report = await verifyFusion({
    original: model,
    fused,
    plan,
    denoisers: values,
    inputs,
    tolerance: 1e-5,
    threads: 1,
  });
  assert.deepEqual(report.topology.differences, []);
  assert.equal(report.flops.original, report.flops.fused);
  for (const e of [...report.outputs, ...report.layers]) {
    assert.ok(e.maxRel <= 1e-5, `${e.name}: relative error ${e.maxRel}`);
  }
  // The denoisers really change the model: the fused output differs from the original.
  assert.ok(report.ok, report.failures.join('; '));
  return { plan, fused, report };
}

describe('fusion identity on single layers', () => {
  test('Gemm with transB (PyTorch Linear layout) and Gemm without transB', async () => {
    for (const transB of [1, 0]) {
      const b = new GraphBuilder({ seed: 1 });
      const x = b.input('x', 'float32', ['N', 6]);
      const w = b.scope('fc', () =>
        b.param('weight', transB ? [5, 6] : [6, 5], { kind: 'normal', std: 1 }),
      );
      const bias = b.scope('fc', () => b.param('bias', [5], { kind: 'normal', std: 1 }));
      b.output(b.gemm(x, w, bias, { transB }), 'y');
      await checkFusion(b.build().model, { x: randomInput([4, 6]) }, 'all', 1);
    }
  });

  test('MatMul + Add bias on 3-D input, weight through Transpose (PyTorch export)', async () => {
    const b = new GraphBuilder({ seed: 2 });
    const x = b.input('x', 'float32', ['N', 3, 6]);
    const w = b.scope('fc', () => b.param('weight', [5, 6], { kind: 'normal', std: 1 }));
    const bias = b.scope('fc', () => b.param('bias', [5], { kind: 'normal', std: 1 }));
    const y = b.add(b.matmul(x, b.transpose(b.op1('Identity', [w]), [1, 0])), bias);
    b.output(b.relu(y), 'y');
    await checkFusion(b.build().model, { x: randomInput([2, 3, 6]) }, 'all', 1);
  });

  test('MatMul without bias gets a bias-free denoiser', async () => {
    const b = new GraphBuilder({ seed: 3 });
    const x = b.input('x', 'float32', ['N', 6]);
    const w = b.scope('proj', () => b.param('weight', [6, 4], { kind: 'normal', std: 1 }));
    b.output(b.matmul(x, w), 'y');
    const { plan } = await checkFusion(b.build().model, { x: randomInput([5, 6]) });
    assert.equal(plan.layers[0]!.affine, false);
    assert.equal(plan.layers[0]!.names.bias, undefined);
  });

  test('Conv with stride 2, padding 1, dilation, and a graph output right after it', async () => {
    for (const [stride, pad, dil] of [
      [2, 1, 1],
      [1, 2, 2],
    ] as const) {
      const b = new GraphBuilder({ seed: 4 });
      const x = b.input('x', 'float32', ['N', 3, 9, 9]);
      const w = b.scope('conv', () => b.param('weight', [4, 3, 3, 3], { kind: 'normal', std: 1 }));
      const bias = b.scope('conv', () => b.param('bias', [4], { kind: 'normal', std: 1 }));
      const y = b.conv(x, w, bias, {
        strides: [stride, stride],
        pads: [pad, pad, pad, pad],
        dilations: [dil, dil],
      });
      b.output(y, 'y');
      await checkFusion(b.build().model, { x: randomInput([2, 3, 9, 9]) }, 'all', 1);
    }
  });
});

describe('end-to-end fusion on model presets', () => {
  for (const preset of ['vit-micro', 'resnet-micro']) {
    test(`${preset}: every selected layer and the outputs match; topology and FLOPs unchanged`, async () => {
      const def = getPreset(preset, { numClasses: 3 });
      const { model } = buildBackbone(def, 'eval', 0).b.build();
      const { plan, fused } = await checkFusion(model, {
        input: randomInput([3, ...def.inputShape]),
      });
      assert.ok(plan.layers.length >= (preset === 'vit-micro' ? 10 : 5));
      // Only the selected layers' initializers changed.
      const changed = [...model.graph.initializers.keys()].filter(
        (k) => model.graph.initializers.get(k)!.data !== fused.graph.initializers.get(k)!.data,
      );
      const allowed = new Set(
        plan.layers.flatMap((p) => [p.layer.weight, ...(p.layer.bias ? [p.layer.bias] : [])]),
      );
      for (const k of changed)
        assert.ok(allowed.has(k), `initializer ${k} changed but belongs to no selected layer`);
    });
  }

  test('the mlp filter selects only blocks.*.mlp.fc1/fc2', () => {
    const { model } = buildBackbone(getPreset('vit-micro'), 'eval', 0).b.build();
    const plan = planConversion(model.graph, { filter: 'mlp' });
    assert.deepEqual(
      plan.layers.map((p) => p.layer.name),
      ['blocks.0.mlp.fc1', 'blocks.0.mlp.fc2', 'blocks.1.mlp.fc1', 'blocks.1.mlp.fc2'],
    );
    assert.deepEqual(
      plan.layers.map((p) => p.t),
      [4, 3, 2, 1],
    );
  });
});

describe('a PyTorch-style exported model', () => {
  /** Dynamic batch, a shape-computing subgraph, Identity/Transpose weights, BN folded into Conv. */
  function exported(): Model {
    const b = new GraphBuilder({ seed: 9 });
    const x = b.input('input', 'float32', ['batch', 2, 6, 6]);
    const cw = b.param('onnx::Conv_101', [4, 2, 3, 3], { kind: 'normal', std: 0.5 });
    const cb = b.param('onnx::Conv_102', [4], { kind: 'normal', std: 0.5 });
    let h: Value = b.relu(b.conv(x, cw, cb, { pads: [1, 1, 1, 1] }));
    h = b.op1('GlobalAveragePool', [h]);
    // Flatten via Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as torch.onnx emits.
    const n = b.unsqueeze(
      b.gather(
        b.op1('Shape', [h]),
        b.constant({ dtype: 'int64', dims: [], data: new BigInt64Array([0n]) }),
      ),
      [0],
    );
    h = b.op1('Reshape', [h, b.concat([n, b.ints([-1])], 0)]);
    const w1 = b.param('fc1.weight', [8, 4], { kind: 'normal', std: 0.5 });
    const b1 = b.param('fc1.bias', [8], { kind: 'normal', std: 0.5 });
    h = b.relu(b.add(b.matmul(h, b.transpose(w1, [1, 0])), b1));
    const w2 = b.param('fc2.weight', [3, 8], { kind: 'normal', std: 0.5 });
    const b2 = b.param('fc2.bias', [3], { kind: 'normal', std: 0.5 });
    b.output(b.gemm(h, b.op1('Identity', [w2]), b2, { transB: 1 }), 'logits');
    return b.build().model;
  }

  test('fused graph keeps every node, name and initializer shape', async () => {
    const model = exported();
    const { fused } = await checkFusion(model, { input: randomInput([3, 2, 6, 6]) }, 'all', 3);
    assert.deepEqual(compareTopology(model, fused), []);
    assert.deepEqual(
      fused.graph.nodes.map((n) => `${n.name}:${n.opType}`),
      model.graph.nodes.map((n) => `${n.name}:${n.opType}`),
    );
  });
});
