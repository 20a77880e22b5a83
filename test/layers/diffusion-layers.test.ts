// The U-Net's layers against direct implementations: GroupNorm (built from
// LayerNormalization), the sinusoidal time embedding, nearest 2x upsampling; and the
// gradient through GroupNorm against finite differences.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { layerContext } from '../../src/layers/context.js';
import { groupNorm } from '../../src/layers/group-norm.js';
import { upsampleNearest } from '../../src/layers/resample.js';
import { sinusoidalEmbedding } from '../../src/layers/time-embed.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { float32 } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/rng.js';
import { checkGradients } from '../autodiff/grad-check.js';

async function run(b: GraphBuilder, feeds: Record<string, ReturnType<typeof float32>>) {
  const s = await Session.create(b.build().model, { threads: 1 });
  const out = await s.run(feeds);
  await s.release();
  return out;
}

describe('groupNorm', () => {
  test('equals (x − mean_g) / sqrt(var_g + eps) · weight_c + bias_c per group', async () => {
    const [n, c, h, w, g] = [2, 6, 3, 2, 3];
    const b = new GraphBuilder({ seed: 1 });
    const ctx = layerContext(b, 'eval');
    const x = b.input('x', 'float32', ['N', c, h, w]);
    b.output(groupNorm(ctx, x, 'gn', c, g, 1e-5), 'y');
    // Non-trivial affine parameters.
    const rng = new Rng(2);
    const weight = b.graph.initializers.get('gn.weight')!.data as Float32Array;
    const bias = b.graph.initializers.get('gn.bias')!.data as Float32Array;
    rng.fillNormal(weight, 1, 0.5);
    rng.fillNormal(bias);
    const xs = rng.fillNormal(new Float32Array(n * c * h * w), 0.3, 2);
    const y = (await run(b, { x: float32([n, c, h, w], xs) })).y!.data as Float32Array;
    const per = (c / g) * h * w;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < g; k++) {
        const base = i * c * h * w + k * per;
        let m = 0;
        for (let j = 0; j < per; j++) m += xs[base + j]!;
        m /= per;
        let v = 0;
        for (let j = 0; j < per; j++) v += (xs[base + j]! - m) ** 2;
        v /= per;
        for (let j = 0; j < per; j++) {
          const ch = k * (c / g) + Math.floor(j / (h * w));
          const want = ((xs[base + j]! - m) / Math.sqrt(v + 1e-5)) * weight[ch]! + bias[ch]!;
          assert.ok(
            Math.abs(y[base + j]! - want) < 1e-5,
            `n${i} g${k} j${j}: ${y[base + j]} vs ${want}`,
          );
        }
      }
    }
  });

  test('gradient with respect to x matches finite differences (float32)', async () => {
    await checkGradients({
      dtype: 'float32',
      eps: 1e-3,
      rtol: 2e-2,
      atol: 2e-3,
      inputs: { x: { dims: [2, 4, 2, 2] } },
      build: (b, v) => groupNorm(layerContext(b, 'train'), v.x!, 'gn', 4, 2),
    });
  });

  test('refuses groups that do not divide the channels', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 6, 2, 2]);
    assert.throws(
      () => groupNorm(layerContext(b, 'eval'), x, 'gn', 6, 4),
      /4 groups do not divide 6/,
    );
  });
});

describe('sinusoidalEmbedding', () => {
  test("DDPM's formula: [sin(t f_i), cos(t f_i)], f_i = 10000^(−i/(half−1))", async () => {
    const b = new GraphBuilder();
    const t = b.input('t', 'float32', ['N']);
    b.output(sinusoidalEmbedding(b, t, 8), 'e');
    const ts = [0, 1, 17, 999];
    const e = (await run(b, { t: float32([4], ts) })).e!;
    assert.deepEqual(e.dims, [4, 8]);
    ts.forEach((tv, n) => {
      for (let i = 0; i < 4; i++) {
        const f = Math.pow(10000, -i / 3);
        const got = e.data as Float32Array;
        assert.ok(Math.abs(got[n * 8 + i]! - Math.sin(tv * f)) < 2e-4, `sin t=${tv} i=${i}`);
        assert.ok(Math.abs(got[n * 8 + 4 + i]! - Math.cos(tv * f)) < 2e-4, `cos t=${tv} i=${i}`);
      }
    });
  });
});

describe('upsampleNearest', () => {
  test('repeats each pixel into a 2x2 block, batch symbolic', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 1, 2, 3]);
    const y = upsampleNearest(layerContext(b, 'eval'), x, 2);
    assert.deepEqual(y.shape, ['N', 1, 4, 6]);
    b.output(y, 'y');
    const out = (
      await run(b, { x: float32([2, 1, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) })
    ).y!;
    const got = Array.from(out.data as Float32Array);
    assert.deepEqual(
      got.slice(0, 24),
      [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6],
    );
    assert.deepEqual(got.slice(24, 30), [7, 7, 8, 8, 9, 9]);
  });
});
