// The models the browser tests and bench:browser run: ViT-tiny for Fashion-MNIST (random
// weights, seed 0) and the same model with all 26 embedding layers fused.
import { fuseModel } from '../../src/denoise/fuse.js';
import { initDenoisers, planConversion } from '../../src/denoise/plan.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { buildBackbone, getPreset } from '../../src/models/registry.js';
import type { Model } from '../../src/onnx/ir.js';
import { float32, type Tensor } from '../../src/onnx/tensor.js';
import { Rng } from '../../src/util/rng.js';

/**
 * The original and fused ViT-tiny, and how many layers were fused.
 * @param denoisers - 'strong': large random denoisers with c1 = 0.3 (each fused map far
 *   from the identity, so that a wrong weight shows); 'paper': the initial denoisers at
 *   the paper's coefficients, as bench:latency fuses them
 */
export function vitPair(denoisers: 'strong' | 'paper' = 'strong'): {
  original: Model;
  fused: Model;
  layers: number;
} {
  const original = buildBackbone(getPreset('vit-tiny-fmnist'), 'eval', 0).b.build().model;
  const plan = planConversion(original.graph, { filter: 'all' });
  if (denoisers === 'paper') {
    const fused = fuseModel(original, plan, initDenoisers(plan, 0));
    return { original, fused, layers: plan.layers.length };
  }
  const values = initDenoisers(plan, 7);
  const rng = new Rng(11);
  for (const t of values.values()) rng.fillNormal(t.data as Float32Array, 0, 0.5);
  // c1 ~ 0.01 at the paper's betas; 0.3 makes each fused map far from the identity.
  for (const p of plan.layers) p.coeffs = { ...p.coeffs, c1: 0.3, c3: 1.2 };
  return { original, fused: fuseModel(original, plan, values), layers: plan.layers.length };
}

/** The first n committed Fashion-MNIST test images as one [n, 1, 28, 28] batch in [0, 1]. */
export async function fmnistBatch(n: number): Promise<{ input: Tensor; labels: number[] }> {
  const test = await loadFashionMnist('embedded', 'test');
  const px = 28 * 28;
  return {
    input: float32([n, 1, 28, 28], test.images.slice(0, n * px)),
    labels: Array.from(test.labels.slice(0, n)),
  };
}
