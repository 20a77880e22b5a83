import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { subset } from '../../src/data/dataset.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { evaluateModel } from '../../src/eval/evaluate.js';
import { getPreset } from '../../src/models/registry.js';
import { initialWeights } from '../../src/models/weights.js';

describe('evaluateModel per item', () => {
  test('per-image correctness averages to acc@1 and per-query AP to mAP', async () => {
    const test = await loadFashionMnist('embedded', 'test');
    const data = subset(
      test,
      Int32Array.from({ length: 400 }, (_, i) => i * 5),
    );
    const def = getPreset('mlp-fmnist');
    const model = { def, values: initialWeights(def, 3) };
    const plain = await evaluateModel(model, data, { threads: 1, queriesPerClass: 5 });
    assert.equal(plain.correct, undefined);
    const r = await evaluateModel(model, data, { threads: 1, queriesPerClass: 5, perItem: true });
    assert.equal(r.correct!.length, 400);
    assert.equal(r.correct!.reduce((a, b) => a + b, 0) / 400, r.acc1);
    assert.equal(r.acc1, plain.acc1);
    const ap = Array.from(r.queryAP!).filter((v) => !Number.isNaN(v));
    assert.equal(ap.length, r.validQueries);
    const mean = ap.reduce((a, b) => a + b, 0) / ap.length;
    assert.ok(Math.abs(mean - r.mAP) < 1e-12, `${mean} vs ${r.mAP}`);
    // An untrained model is wrong on some images and right on others.
    assert.ok(r.acc1 > 0 && r.acc1 < 1);
  });
});
