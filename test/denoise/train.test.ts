// Denoiser training: the SGD fit of the noise-prediction loss against the closed form,
// and label-free training on a model preset.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImageDataset } from '../../src/data/dataset.js';
import { collectMoments, fitClosedForm } from '../../src/denoise/fit.js';
import { initDenoisers, planConversion } from '../../src/denoise/plan.js';
import { trainLabelFree } from '../../src/denoise/train.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { float32 } from '../../src/onnx/tensor.js';
import { Rng } from '../../src/util/rng.js';

/** n samples of a correlated Gaussian in `dim` dimensions with a non-zero mean. */
function gaussianFeatures(n: number, dim: number, seed: number): ImageDataset {
  const rng = new Rng(seed);
  const mix = rng.fillNormal(new Float64Array(dim * dim), 0, 0.6);
  const mean = rng.fillNormal(new Float64Array(dim), 0, 1);
  const images = new Float32Array(n * dim);
  const z = new Float64Array(dim);
  for (let s = 0; s < n; s++) {
    rng.fillNormal(z);
    for (let i = 0; i < dim; i++) {
      let v = mean[i]!;
      for (let j = 0; j < dim; j++) v += mix[i * dim + j]! * z[j]!;
      images[s * dim + i] = v;
    }
  }
  return {
    name: 'gauss',
    size: n,
    channels: 1,
    height: 1,
    width: dim,
    numClasses: 0,
    images,
    labels: new Int32Array(n).fill(-1),
  };
}

describe('denoiser training', () => {
  test('SGD on the MSE loss converges to the closed-form Wd (relative difference < 1e-2)', async () => {
    const dim = 6;
    const b = new GraphBuilder({ seed: 0 });
    const x = b.input('input', 'float32', ['N', dim]);
    const w = b.scope('fc', () => b.param('weight', [4, dim], { kind: 'normal', std: 1 }));
    const bias = b.scope('fc', () => b.param('bias', [4], { kind: 'zeros' }));
    b.output(b.gemm(x, w, bias, { transB: 1 }), 'y');
    const model = b.build().model;
    // t = 1000 (ᾱ ≈ 0.35): a well-conditioned problem where Wd is far from 0 and from I.
    const plan = planConversion(model.graph, { timesteps: { fc: 1000 } });
    const data = gaussianFeatures(8192, dim, 5);
    const stats = await collectMoments(
      model,
      plan,
      [{ input: float32([data.size, dim], data.images) }],
      { session: { threads: 1 } },
    );
    const closed = (await fitClosedForm(plan, stats, { threads: 1 })).values.get(
      'fc.denoise.weight',
    )!.data as Float32Array;
    const sgd = await trainLabelFree({
      model,
      plan,
      init: initDenoisers(plan, 1),
      data,
      lossKind: 'mse',
      config: {
        epochs: 150,
        batchSize: 1024,
        lr: 2e-2,
        minLr: 0,
        warmup: 0.02,
        seed: 3,
        threads: 1,
      },
    });
    const fitted = sgd.values.get('fc.denoise.weight')!.data as Float32Array;
    let num = 0;
    let den = 0;
    for (let i = 0; i < closed.length; i++) {
      num += (fitted[i]! - closed[i]!) ** 2;
      den += closed[i]! ** 2;
    }
    const rel = Math.sqrt(num / den);
    assert.ok(rel < 1e-2, `relative Frobenius difference ${rel}`);
    // The training loss went down from the random initialisation.
    assert.ok(sgd.history.at(-1)!.loss < sgd.history[0]!.loss);
  });
});
