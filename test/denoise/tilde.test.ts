// DenoiseRep~: training lowers the loss; the attached reverse steps equal a reference
// computation written out in the test; the graph grows (extra FLOPs), unlike fusion.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { coefficients, makeSchedule } from '../../src/denoise/schedule.js';
import { attachTilde, trainTilde } from '../../src/denoise/tilde.js';
import { countFlops } from '../../src/eval/flops.js';
import { buildBackbone, getPreset } from '../../src/models/registry.js';
import { float32 } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/rng.js';

/** erf by Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-a * a);
  return s * y;
}

describe('DenoiseRep~', () => {
  test('training lowers the loss, and the attached steps match a reference', async () => {
    const def = getPreset('vit-micro', { numClasses: 3 });
    const { model } = buildBackbone(def, 'eval', 0).b.build();
    const dim = def.featureDim;
    const rng = new Rng(2);
    const feats = rng.fillNormal(new Float32Array(512 * dim));
    const cfg = { steps: 3, hidden: 8 };
    const { values, losses } = await trainTilde({
      features: feats,
      dim,
      config: cfg,
      epochs: 8,
      batchSize: 64,
      lr: 3e-3,
      seed: 1,
      threads: 1,
    });
    assert.ok(losses.at(-1)! < losses[0]!, `loss ${losses[0]} -> ${losses.at(-1)}`);

    const tilde = attachTilde(model, values, dim, cfg);
    assert.ok(tilde.graph.nodes.length > model.graph.nodes.length);
    assert.ok(countFlops(tilde).total > countFlops(model).total);

    const x = float32([2, ...def.inputShape], rng.fillUniform(new Float32Array(2 * 64), 0, 1));
    const s0 = await Session.create(model, { threads: 1 });
    const s1 = await Session.create(tilde, { threads: 1 });
    const f0 = (await s0.run({ input: x })).feature!.data as Float32Array;
    const f1 = (await s1.run({ input: x })).feature!.data as Float32Array;
    // Reference: f ← c3 f − c1 (W2 gelu(W1 f + b1 + E[t]) + b2), t = steps..1.
    const p = (n: string) => values.get(`denoise_tilde.${n}`)!.data as Float32Array;
    const sched = makeSchedule();
    for (let r = 0; r < 2; r++) {
      let f = Array.from(f0.subarray(r * dim, (r + 1) * dim));
      for (let t = cfg.steps; t >= 1; t--) {
        const c = coefficients(sched, t);
        const h = Array.from({ length: cfg.hidden }, (_, j) => {
          let v = p('fc1.bias')[j]! + p('time_embed')[(t - 1) * cfg.hidden + j]!;
          for (let i = 0; i < dim; i++) v += p('fc1.weight')[j * dim + i]! * f[i]!;
          return 0.5 * v * (1 + erf(v / Math.SQRT2));
        });
        f = f.map((fi, i) => {
          let e = p('fc2.bias')[i]!;
          for (let j = 0; j < cfg.hidden; j++) e += p('fc2.weight')[i * cfg.hidden + j]! * h[j]!;
          return c.c3 * fi - c.c1 * e;
        });
      }
      for (let i = 0; i < dim; i++)
        assert.ok(
          Math.abs(f1[r * dim + i]! - f[i]!) < 1e-5,
          `feature ${r},${i}: ${f1[r * dim + i]} vs ${f[i]}`,
        );
    }
    await s0.release();
    await s1.release();
  });
});
