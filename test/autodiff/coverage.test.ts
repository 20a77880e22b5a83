// Every op the project's models use has a gradient rule or an explicit no-gradient mark.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph } from '../../src/autodiff/engine.js';
import { differentiableOps, nonDifferentiableOps } from '../../src/autodiff/registry.js';
import { initDenoisers, planConversion } from '../../src/denoise/plan.js';
import { labelFreeGraph } from '../../src/denoise/train.js';
import { ddpmTrainingGraph } from '../../src/diffusion/objective.js';
import {
  buildBackbone,
  diffusionPresetNames,
  getDiffusionPreset,
  getPreset,
  presetNames,
} from '../../src/models/registry.js';
import type { Model } from '../../src/onnx/ir.js';
import { knownShapeOps } from '../../src/onnx/shapes.js';
import { crossEntropy } from '../../src/train/losses.js';

/** The ops of issue 2: what the ViT, ResNet and MLP presets and their losses need. */
const MODEL_OPS = [
  'MatMul',
  'Gemm',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Neg',
  'Pow',
  'Sqrt',
  'Exp',
  'Log',
  'Abs',
  'Tanh',
  'Sigmoid',
  'Relu',
  'LeakyRelu',
  'Erf',
  'Softmax',
  'LogSoftmax',
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'LayerNormalization',
  'BatchNormalization',
  'Conv',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'Reshape',
  'Flatten',
  'Transpose',
  'Concat',
  'Slice',
  'Gather',
  'Squeeze',
  'Unsqueeze',
  'Expand',
  'Where',
  'Identity',
  'Dropout',
  'Shape',
  'Cast',
];

/** Ops in `ops` that have neither a gradient rule nor a no-gradient mark. */
function uncovered(ops: Iterable<string>): string[] {
  const covered = new Set([...differentiableOps(), ...nonDifferentiableOps()]);
  return [...new Set(ops)].filter((o) => !covered.has(o)).sort();
}

describe('gradient coverage', () => {
  test('no op is both differentiable and marked non-differentiable', () => {
    const marked = new Set(nonDifferentiableOps());
    assert.deepEqual(
      differentiableOps().filter((o) => marked.has(o)),
      [],
    );
  });

  test('every op of the models (issue 2) has a shape rule and a rule or a mark', () => {
    const shaped = knownShapeOps();
    assert.deepEqual(
      MODEL_OPS.filter((o) => !shaped.has(o)),
      [],
      'ops without a shape rule',
    );
    assert.deepEqual(uncovered(MODEL_OPS), [], 'ops with neither a gradient rule nor a mark');
  });

  test('every op in the training graphs of the small presets is covered', () => {
    // The large presets (vit-s16, resnet50, ...) use the same builders as these.
    const small = presetNames().filter((n) => /micro|tiny|mlp/.test(n));
    assert.ok(small.length >= 3, `small presets: ${small.join(', ')}`);
    const seen = new Set<string>();
    for (const name of small) {
      for (const bnneck of [false, true]) {
        const { b } = buildBackbone(getPreset(name, { bnneck }), 'train');
        for (const n of b.graph.nodes) seen.add(n.opType);
      }
    }
    assert.ok(seen.has('Conv') && seen.has('LayerNormalization'), [...seen].join(' '));
    assert.deepEqual(uncovered(seen), [], 'preset ops with neither a rule nor a mark');
  });
});

describe('whole training graphs of vit-micro and resnet-micro', () => {
  /** Op types of a model, subgraphs excluded (the presets build none). */
  const opsOf = (m: Model) => new Set(m.graph.nodes.map((n) => n.opType));

  for (const name of ['vit-micro', 'resnet-micro']) {
    for (const bnneck of [false, true]) {
      test(`${name}${bnneck ? ' + BNNeck' : ''}, dropout 0.1, cross-entropy: covered and differentiable`, () => {
        const def = getPreset(name, { bnneck, dropout: 0.1 });
        const { b, ctx, logits } = buildBackbone(def, 'train');
        // The ViT draws several dropout masks, fed as distinct graph inputs.
        if (def.family === 'vit') assert.ok(ctx.dropoutMasks.size >= 2, `${ctx.dropoutMasks.size}`);
        b.output(crossEntropy(b, logits, def.numClasses).loss, 'loss');
        const { model, params } = b.build();
        const ops = opsOf(model);
        assert.ok(ops.has('LogSoftmax'), [...ops].join(' '));
        assert.deepEqual(uncovered(ops), [], 'ops with neither a gradient rule nor a mark');
        // Every trainable parameter is reached from the loss, and no op on the way fails.
        const g = buildGradientGraph(model, { loss: 'loss', wrt: params });
        assert.deepEqual(g.unreachable, []);
        assert.equal(Object.keys(g.gradOutputs).length, params.length);
      });
    }

    test(`${name}: the label-free denoising loss graph is covered and differentiable`, () => {
      const def = getPreset(name);
      const { b } = buildBackbone(def, 'eval');
      const model = b.build().model;
      const plan = planConversion(model.graph, { source: name });
      assert.ok(plan.layers.length > 0);
      const values = initDenoisers(plan, 1);
      const lf = labelFreeGraph(model, plan, values, 2);
      const ops = opsOf(lf.model);
      assert.deepEqual(uncovered(ops), [], 'ops with neither a gradient rule nor a mark');
      const wrt = [...values.keys()];
      const g = buildGradientGraph(lf.model, { loss: 'loss', wrt });
      assert.deepEqual(g.unreachable, []);
      assert.equal(lf.layerLosses.length, plan.layers.length);
    });
  }
});

describe('training graphs of the diffusion U-Nets', () => {
  for (const name of diffusionPresetNames()) {
    test(`${name}, DDPM loss: every op covered, every parameter reached`, () => {
      const g = ddpmTrainingGraph(getDiffusionPreset(name));
      const { model, params } = g.b.build();
      const ops = new Set(model.graph.nodes.map((n) => n.opType));
      for (const op of ['Resize', 'Sin', 'Cos', 'LayerNormalization', 'Conv', 'Softmax']) {
        assert.ok(ops.has(op), `${name} uses ${op}`);
      }
      assert.deepEqual(uncovered(ops), [], 'ops with neither a gradient rule nor a mark');
      const grad = buildGradientGraph(model, { loss: g.loss, wrt: params });
      assert.deepEqual(grad.unreachable, []);
    });
  }
});
