// Every op the project's models use has a gradient rule or an explicit no-gradient mark.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { differentiableOps, nonDifferentiableOps } from '../../src/autodiff/registry.js';
import { buildBackbone, getPreset, presetNames } from '../../src/models/registry.js';
import { knownShapeOps } from '../../src/onnx/shapes.js';

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
