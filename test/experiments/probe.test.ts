// Probes reach known accuracies on toy sets: a linear probe separates linearly separable
// classes (100%); where the class sits in one marked token among distractors, mean pooling
// loses it (a linear probe near 50%) and the attention-pooling head finds it (100%).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ATTENTION_PROBE,
  featureNorm,
  LINEAR_PROBE,
  type LabelledFeatures,
  trainProbe,
} from '../../src/experiments/probe.js';
import { Rng } from '../../src/util/rng.js';

/** n points in 6-D labelled by argmax of W x, kept only with a margin of at least 1. */
function separable(n: number, rng: Rng): LabelledFeatures {
  const W = [
    [1, 0, 0, 1, 0, -1],
    [0, 1, 0, -1, 1, 0],
    [0, 0, 1, 0, -1, 1],
  ];
  const data = new Float32Array(n * 6);
  const labels = new Int32Array(n);
  for (let i = 0; i < n;) {
    const x = Array.from({ length: 6 }, () => 3 * rng.normal() + 5);
    const s = W.map((w) => w.reduce((a, wk, k) => a + wk * x[k]!, 0));
    const order = [...s].sort((a, b) => b - a);
    if (order[0]! - order[1]! < 1) continue;
    data.set(x, i * 6);
    labels[i] = s.indexOf(order[0]!);
    i++;
  }
  return { features: { dims: [6], n, data }, labels, numClasses: 3 };
}

/**
 * Grids [4, 3, 3] (9 tokens of 4 channels): one salient token, marked by 3 on channel 0,
 * carries the class as 2 on channel 1 + class; each other token carries 2 on a random
 * one of those channels; noise 0.1 everywhere. Averaged over positions, the class is
 * buried under the distractors; attention can pick the marked token.
 */
function salient(n: number, rng: Rng, pooled: boolean): LabelledFeatures {
  const [T, C] = [9, 4];
  const grid = new Float32Array(n * C * T);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = rng.int(3);
    const s = rng.int(T);
    for (let k = 0; k < C * T; k++) grid[i * C * T + k] = 0.1 * rng.normal();
    for (let tok = 0; tok < T; tok++) {
      const cls = tok === s ? labels[i]! : rng.int(3);
      grid[i * C * T + (1 + cls) * T + tok]! += 2;
      if (tok === s) grid[i * C * T + tok]! += 3;
    }
  }
  if (!pooled) return { features: { dims: [C, 3, 3], n, data: grid }, labels, numClasses: 3 };
  const mean = new Float32Array(n * C);
  for (let i = 0; i < n * C; i++) {
    for (let k = 0; k < T; k++) mean[i]! += grid[i * T + k]! / T;
  }
  return { features: { dims: [C], n, data: mean }, labels, numClasses: 3 };
}

describe('probes on toy sets', () => {
  test('linear probe: 100% on linearly separable classes (features far from standard)', async () => {
    const rng = new Rng(0);
    const r = await trainProbe({
      train: separable(1500, rng),
      test: separable(500, rng),
      head: 'linear',
      config: { ...LINEAR_PROBE, epochs: 30, batchSize: 64, seed: 0, threads: 1 },
    });
    assert.equal(r.testImages, 500);
    assert.equal(r.acc1, 1);
    assert.ok(r.history.at(-1)!.loss < r.history[0]!.loss);
  });

  test('class in one marked token: linear probe on pooled features near 50%, attention head 100%', async () => {
    const cfg = { epochs: 12, batchSize: 64, seed: 1, threads: 1 };
    const lin = await trainProbe({
      train: salient(1000, new Rng(1), true),
      test: salient(400, new Rng(2), true),
      head: 'linear',
      config: { ...LINEAR_PROBE, ...cfg },
    });
    assert.ok(lin.acc1 < 0.6, `linear probe on pooled features: ${lin.acc1}`);
    const att = await trainProbe({
      train: salient(1000, new Rng(1), false),
      test: salient(400, new Rng(2), false),
      head: 'attention',
      heads: 2,
      config: { ...ATTENTION_PROBE, ...cfg, lr: 3e-3 },
    });
    assert.equal(att.acc1, 1);
  });

  test('featureNorm: per channel over samples and positions; constant channels get std 1', () => {
    const n = featureNorm({
      dims: [2, 1, 2],
      n: 2,
      data: Float32Array.from([1, 3, 5, 5, 3, 1, 5, 5]),
    });
    assert.deepEqual(n.mean, [2, 5]);
    assert.deepEqual(n.std, [1, 1]);
  });

  test('mismatched shapes are data errors', async () => {
    const rng = new Rng(3);
    await assert.rejects(
      trainProbe({
        train: separable(10, rng),
        test: salient(10, rng, true),
        head: 'linear',
        config: { ...LINEAR_PROBE, seed: 0 },
      }),
      /train features are \[6\], test features \[4\]/,
    );
  });
});
