// End to end: a small MLP (Gemm-ReLU-Gemm) trained by the engine (gradient graph on ONNX
// Runtime, AdamW in TypeScript) on three seeded Gaussian blobs in 2-D learns to separate
// them, and a second run with the same seed ends with bit-identical weights. (Speed is
// measured by `npm run bench:engine`, not asserted here.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { float32 } from '../../src/onnx/tensor.js';
import { crossEntropy, oneHot } from '../../src/train/losses.js';
import { AdamW, defaultDecayGroups } from '../../src/train/optim.js';
import { ParamStore } from '../../src/models/params.js';
import { Rng } from '../../src/util/rng.js';
import { TrainStep } from '../../src/train/step.js';

const CLASSES = 3;
const HIDDEN = 16;

interface Blobs {
  x: Float32Array;
  y: Int32Array;
  n: number;
}

/**
 * n points, n / 3 per class, around centres on a circle of radius 3 at 0°, 120° and 240°,
 * with standard deviation 0.6: the centres are 3√3 ≈ 5.2 apart, about 4.3 standard
 * deviations from each to the decision boundary, so nearly every point is separable.
 */
function blobs(n: number, seed: number): Blobs {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % CLASSES;
    const angle = (2 * Math.PI * c) / CLASSES;
    y[i] = c;
    x[2 * i] = 3 * Math.cos(angle) + 0.6 * rng.normal();
    x[2 * i + 1] = 3 * Math.sin(angle) + 0.6 * rng.normal();
  }
  return { x, y, n };
}

/** Fraction of rows of logits [n, K] whose arg-max is the label. */
function accuracy(logits: Float32Array, y: Int32Array): number {
  let right = 0;
  for (let i = 0; i < y.length; i++) {
    let best = 0;
    for (let k = 1; k < CLASSES; k++)
      if (logits[i * CLASSES + k]! > logits[i * CLASSES + best]!) best = k;
    if (best === y[i]) right++;
  }
  return right / y.length;
}

interface RunResult {
  store: ParamStore;
  firstEpochLoss: number;
  initialLoss: number;
  finalLoss: number;
  trainAcc: number;
  testAcc: number;
}

/** Trains the MLP with AdamW on mini-batches of 50 for `epochs` epochs. */
async function train(seed: number, epochs = 15): Promise<RunResult> {
  const b = new GraphBuilder({ name: 'mlp', seed });
  const x = b.input('x', 'float32', ['N', 2]);
  const fc = (name: string, inF: number, outF: number) =>
    b.scope(name, () => ({
      w: b.param('weight', [outF, inF], { kind: 'uniform', bound: 1 / Math.sqrt(inF) }),
      bias: b.param('bias', [outF], { kind: 'uniform', bound: 1 / Math.sqrt(inF) }),
    }));
  const fc1 = fc('fc1', 2, HIDDEN);
  const fc2 = fc('fc2', HIDDEN, CLASSES);
  const h = b.relu(b.gemm(x, fc1.w, fc1.bias, { transB: 1 }));
  const logits = b.gemm(h, fc2.w, fc2.bias, { transB: 1 });
  b.output(crossEntropy(b, logits, CLASSES).loss, 'loss');
  const { model, params } = b.build();
  assert.deepEqual(params, ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);

  const store = ParamStore.fromInitializers(model.graph.initializers, params);
  const step = await TrainStep.create({
    model,
    loss: 'loss',
    trainable: params,
    extraOutputs: [logits.name],
    session: { threads: 1 },
  });
  assert.deepEqual(step.dataInputs().sort(), ['target', 'x']);
  const shapes = new Map(store.entries().map((p) => [p.name, p.shape]));
  const opt = new AdamW(store, defaultDecayGroups(params, 1e-4, shapes));

  const data = blobs(600, seed + 1000);
  const feeds = (idx: ArrayLike<number>) => {
    const bx = new Float32Array(idx.length * 2);
    const by = new Int32Array(idx.length);
    for (let i = 0; i < idx.length; i++) {
      const j = idx[i]!;
      bx[2 * i] = data.x[2 * j]!;
      bx[2 * i + 1] = data.x[2 * j + 1]!;
      by[i] = data.y[j]!;
    }
    return {
      x: float32([idx.length, 2], bx),
      target: float32([idx.length, CLASSES], oneHot(by, CLASSES)),
    };
  };
  const all = Array.from({ length: data.n }, (_, i) => i);
  const initialLoss = (await step.run(feeds(all), store)).loss;

  const order = new Rng(seed);
  let firstEpochLoss = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const perm = order.permutation(data.n);
    let sum = 0;
    let batches = 0;
    for (let s = 0; s + 50 <= data.n; s += 50) {
      const { loss, grads } = await step.run(feeds(perm.subarray(s, s + 50)), store);
      opt.step(grads, 0.02);
      sum += loss;
      batches++;
    }
    if (epoch === 0) firstEpochLoss = sum / batches;
  }

  // Evaluation through the same session: fetch logits, do not step the optimiser.
  const final = await step.run(feeds(all), store);
  const trainAcc = accuracy(final.extras[logits.name]!.data as Float32Array, data.y);
  const test = blobs(300, seed + 2000);
  const testOut = await step.run(
    {
      x: float32([test.n, 2], test.x),
      target: float32([test.n, CLASSES], oneHot(test.y, CLASSES)),
    },
    store,
  );
  const testAcc = accuracy(testOut.extras[logits.name]!.data as Float32Array, test.y);
  await step.release();
  return { store, firstEpochLoss, initialLoss, finalLoss: final.loss, trainAcc, testAcc };
}

describe('an MLP classifier trained by the engine', () => {
  test('loss drops at least 100x and accuracy exceeds 97% (train) and 95% (held out)', async (t) => {
    const r = await train(7);
    t.diagnostic(
      `loss ${r.initialLoss.toFixed(4)} -> ${r.firstEpochLoss.toFixed(4)} (epoch 1 mean) -> ` +
        `${r.finalLoss.toFixed(4)}; accuracy ${r.trainAcc} train, ${r.testAcc} held out`,
    );
    // Chance level: with small random weights the loss starts near ln 3 ≈ 1.10.
    assert.ok(r.initialLoss > 0.7 && r.initialLoss < 1.6, `initial loss ${r.initialLoss}`);
    assert.ok(
      r.finalLoss < r.initialLoss / 100,
      `loss ${r.initialLoss.toFixed(4)} -> ${r.finalLoss.toFixed(4)}`,
    );
    assert.ok(r.trainAcc > 0.97, `train accuracy ${r.trainAcc}`);
    assert.ok(r.testAcc > 0.95, `held-out accuracy ${r.testAcc}`);
  });

  test('a second run with the same seed gives bit-identical weights; another seed does not', async () => {
    const [a, b, c] = [await train(3, 3), await train(3, 3), await train(4, 3)];
    for (const p of a.store.entries()) {
      const q = b.store.get(p.name).data;
      assert.ok(
        Buffer.from(p.data.buffer).equals(Buffer.from(q.buffer)),
        `${p.name} differs between identical runs`,
      );
    }
    assert.equal(a.finalLoss, b.finalLoss);
    const w = c.store.get('fc1.weight').data;
    assert.ok(!Buffer.from(a.store.get('fc1.weight').data.buffer).equals(Buffer.from(w.buffer)));
  });
});
