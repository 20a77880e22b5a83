// EMA of weights: the warm-up decay min(decay, (1 + k) / (10 + k)) and the update, by hand.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ParamStore } from '../../src/models/params.js';
import { Ema } from '../../src/train/ema.js';

describe('Ema', () => {
  test('two updates by hand, untracked parameters untouched', () => {
    const p = new ParamStore();
    p.set('w', [2], Float32Array.from([1, 2]));
    p.set('frozen', [1], Float32Array.from([5]));
    const ema = new Ema(p, ['w'], 0.5);
    assert.deepEqual(ema.store.names(), ['w']);
    // Step 1: decay min(0.5, 2/11) = 2/11.
    p.get('w').data.set([3, 4]);
    ema.update(p);
    const e1 = [(2 / 11) * 1 + (9 / 11) * 3, (2 / 11) * 2 + (9 / 11) * 4];
    ema.store.get('w').data.forEach((v, i) => assert.ok(Math.abs(v - e1[i]!) < 1e-6));
    // Step 2: decay min(0.5, 3/12) = 0.25.
    p.get('w').data.set([0, 0]);
    ema.update(p);
    ema.store.get('w').data.forEach((v, i) => assert.ok(Math.abs(v - 0.25 * e1[i]!) < 1e-6));
    assert.equal(ema.updates, 2);
    // Late in a run the decay reaches its cap.
    assert.equal(ema.decayAt(1_000_000), 0.5);
    assert.throws(() => new Ema(p, ['w'], 1), /EMA decay must be in \[0, 1\)/);
  });
});
