// BatchNormalization gradients (float64 finite differences: ONNX Runtime has double
// kernels) in training mode on [N,C,H,W] and [N,C], and in inference mode through every
// input; plus a test pinning the running statistics ONNX Runtime computes in training mode,
// which the training loop relies on.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/onnx/builder.js';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { Session } from '../../../src/runtime/session.js';
import { Rng } from '../../../src/util/rng.js';
import { checkGradients, positive } from '../grad-check.js';

const bn = (training: number, momentum = 0.9, epsilon = 1e-5) => ({
  training_mode: training,
  momentum,
  epsilon,
});

describe('BatchNormalization gradient', () => {
  for (const dims of [
    [3, 2, 3, 2],
    [5, 3],
  ]) {
    test(`training mode on [${dims}]: x, scale and B`, async () => {
      const c = dims[1]!;
      await checkGradients({
        inputs: {
          x: { dims },
          scale: { dims: [c] },
          bias: { dims: [c] },
          mean: { dims: [c], constant: true },
          var: { dims: [c], constant: true, transform: positive() },
        },
        build: (b, v) =>
          b.op('BatchNormalization', [v.x!, v.scale!, v.bias!, v.mean!, v.var!], bn(1, 0.9, 1e-3), {
            outputs: 3,
          })[0]!,
      });
    });
  }

  test('training mode, only x differentiable (scale and B constant)', async () => {
    await checkGradients({
      inputs: {
        x: { dims: [4, 3, 2] },
        scale: { dims: [3], constant: true },
        bias: { dims: [3], constant: true },
        mean: { dims: [3], constant: true },
        var: { dims: [3], constant: true, transform: positive() },
      },
      build: (b, v) =>
        b.op('BatchNormalization', [v.x!, v.scale!, v.bias!, v.mean!, v.var!], bn(1), {
          outputs: 3,
        })[0]!,
    });
  });

  test('inference mode: gradients through the fixed statistics, all five inputs', async () => {
    await checkGradients({
      inputs: {
        x: { dims: [2, 3, 2, 2] },
        scale: { dims: [3] },
        bias: { dims: [3] },
        mean: { dims: [3] },
        var: { dims: [3], transform: positive() },
      },
      build: (b, v) =>
        b.op1('BatchNormalization', [v.x!, v.scale!, v.bias!, v.mean!, v.var!], bn(0, 0.9, 1e-2)),
    });
  });

  test('ONNX Runtime running statistics: momentum average with the biased batch variance', async () => {
    const [N, C, H, W] = [3, 2, 2, 3];
    const m = N * H * W;
    const rng = new Rng(11);
    const x = Array.from({ length: N * C * H * W }, () => rng.normal() * 2 + 1);
    const inMean = [0.3, -0.2];
    const inVar = [1.5, 0.7];
    // The momentum attribute is a float32 in the model; use the value ORT reads.
    const momentum = Math.fround(0.8);
    const b = new GraphBuilder();
    const xv = b.input('x', 'float64', [N, C, H, W]);
    const cst = (v: number[]) => b.constant(makeTensor('float64', [C], v));
    const [y, rm, rv] = b.op(
      'BatchNormalization',
      [xv, cst([1, 1]), cst([0, 0]), cst(inMean), cst(inVar)],
      bn(1, momentum, 1e-5),
      { outputs: 3 },
    );
    b.output(y!, 'y');
    b.output(rm!, 'running_mean');
    b.output(rv!, 'running_var');
    const s = await Session.create(b.build().model, { threads: 1 });
    const out = await s.run({ x: makeTensor('float64', [N, C, H, W], x) });
    await s.release();
    for (let c = 0; c < C; c++) {
      const vals: number[] = [];
      for (let n = 0; n < N; n++)
        for (let k = 0; k < H * W; k++) vals.push(x[(n * C + c) * H * W + k]!);
      const mu = vals.reduce((p, v) => p + v, 0) / m;
      const ss = vals.reduce((p, v) => p + (v - mu) ** 2, 0);
      const biased = ss / m;
      const unbiased = ss / (m - 1);
      const runMean = out.running_mean!.data[c] as number;
      const runVar = out.running_var!.data[c] as number;
      // running = input · momentum + batch · (1 − momentum), as the ONNX spec says.
      assert.ok(
        Math.abs(runMean - (inMean[c]! * momentum + mu * (1 - momentum))) < 1e-9,
        `running_mean[${c}]`,
      );
      assert.ok(
        Math.abs(runVar - (inVar[c]! * momentum + biased * (1 - momentum))) < 1e-9,
        `running_var[${c}]`,
      );
      // ... and the variance is the biased one (PyTorch would use the unbiased one here).
      assert.ok(Math.abs(runVar - (inVar[c]! * momentum + unbiased * (1 - momentum))) > 1e-3);
      // The output is normalised with the biased batch variance.
      const y0 = out.y!.data[c * H * W] as number;
      assert.ok(Math.abs(y0 - (x[c * H * W]! - mu) / Math.sqrt(biased + 1e-5)) < 1e-6);
    }
  });
});
