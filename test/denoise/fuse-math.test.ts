import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuseConvOutput, fuseLinearInput } from '../../src/denoise/fuse-math.js';
import { matmul, transpose } from '../../src/denoise/linalg.js';
import { coefficients, makeSchedule } from '../../src/denoise/schedule.js';
import { UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { relErr } from './helpers.js';
import { denoiseInputLinear, denoiseOutputChannels, linearForward } from './reference.js';

function rand(rng: Rng, n: number, std = 1): Float64Array {
  return rng.fillNormal(new Float64Array(n), 0, std);
}

/** Naive direct conv2d (NCHW, OIHW weights, square stride/padding, groups). */
function conv2d(
  x: ArrayLike<number>,
  [n, cin, h, w]: number[],
  wt: ArrayLike<number>,
  [co, ipg, kh, kw]: number[],
  bias: ArrayLike<number> | null,
  stride: number,
  pad: number,
  groups: number,
): { y: Float64Array; oh: number; ow: number } {
  const oh = Math.floor((h! + 2 * pad - kh!) / stride) + 1;
  const ow = Math.floor((w! + 2 * pad - kw!) / stride) + 1;
  const opg = co! / groups;
  const y = new Float64Array(n! * co! * oh * ow);
  for (let b = 0; b < n!; b++) {
    for (let o = 0; o < co!; o++) {
      const g = Math.floor(o / opg);
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          let s = bias ? bias[o]! : 0;
          for (let k = 0; k < ipg!; k++) {
            const c = g * ipg! + k;
            for (let u = 0; u < kh!; u++) {
              for (let v = 0; v < kw!; v++) {
                const yy = i * stride - pad + u;
                const xx = j * stride - pad + v;
                if (yy < 0 || yy >= h! || xx < 0 || xx >= w!) continue;
                s +=
                  wt[((o * ipg! + k) * kh! + u) * kw! + v]! *
                  x[((b * cin! + c) * h! + yy) * w! + xx]!;
              }
            }
          }
          y[((b * co! + o) * oh + i) * ow + j] = s;
        }
      }
    }
  }
  return { y, oh, ow };
}

describe('fuseLinearInput', () => {
  const schedule = makeSchedule();
  const nIn = 7;
  const nOut = 5;
  const rows = 6;

  // A denoiser far from identity so that a wrong formula would show.
  const setup = (seed: number) => {
    const rng = new Rng(seed);
    return {
      w: rand(rng, nOut * nIn),
      b: rand(rng, nOut),
      wd: rand(rng, nIn * nIn, 0.5),
      bd: rand(rng, nIn),
      e: rand(rng, nIn),
      x: rand(rng, rows * nIn, 2),
    };
  };

  for (const layout of ['out-in', 'in-out'] as const) {
    for (const withBias of [true, false]) {
      test(`W' x + b' == W x' + b (${layout}, ${withBias ? 'bias' : 'no bias'})`, () => {
        const { w, b, wd, bd, e, x } = setup(withBias ? 1 : 2);
        // Large c1 to make the denoiser term visible beyond float32 rounding.
        const coeffs = { c1: 0.3, c2: 0.1, c3: 1.2 };
        const weight = layout === 'out-in' ? w : transpose(w, nOut, nIn);
        const bias = withBias ? b : null;
        const f = fuseLinearInput({
          weight,
          bias,
          inFeatures: nIn,
          outFeatures: nOut,
          layout,
          denoiser: { wd, bd, e },
          coeffs,
        });
        assert.equal(f.hadBias, withBias);
        assert.equal(f.biasIsZero, false);
        const fused = linearForward(x, rows, f.weight, f.bias, nIn, nOut, layout);
        const xd = denoiseInputLinear(x, rows, { wd, bd, e }, coeffs);
        const ref = linearForward(xd, rows, weight, bias, nIn, nOut, layout);
        assert.ok(relErr(fused, ref) < 1e-5, `rel err ${relErr(fused, ref)}`);
        // and the denoiser changed the output (the test is not trivially satisfied)
        const plain = linearForward(x, rows, weight, bias, nIn, nOut, layout);
        assert.ok(relErr(plain, ref) > 0.05);
      });
    }
  }

  test('with the product W·Wd given: the same fused layer, in both layouts, past a tile', () => {
    // Sizes past the 64-wide tiles of the transposed read, and not multiples of them.
    const [bigIn, bigOut] = [70, 131];
    const rng = new Rng(5);
    const w = rand(rng, bigOut * bigIn);
    const denoiser = {
      wd: rand(rng, bigIn * bigIn, 0.2),
      bd: rand(rng, bigIn),
      e: rand(rng, bigIn),
    };
    const coeffs = { c1: 0.3, c2: 0.1, c3: 1.2 };
    const product = matmul(w, denoiser.wd, bigOut, bigIn, bigIn);
    for (const layout of ['out-in', 'in-out'] as const) {
      const opts = {
        weight: layout === 'out-in' ? w : transpose(w, bigOut, bigIn),
        bias: rand(rng, bigOut),
        inFeatures: bigIn,
        outFeatures: bigOut,
        layout,
        denoiser,
        coeffs,
      };
      const plain = fuseLinearInput(opts);
      const viaProduct = fuseLinearInput({ ...opts, product });
      assert.ok(relErr(viaProduct.weight, plain.weight) < 1e-6, layout);
      // The bias does not use the product: the same arithmetic, bit for bit.
      assert.deepEqual(viaProduct.bias, plain.bias, layout);
      // A product transposed by mistake would not match (the test can fail).
      const wrong = fuseLinearInput({ ...opts, product: product.map((v, i) => (i ? v : v + 1)) });
      assert.ok(relErr(wrong.weight, plain.weight) > 1e-6, layout);
    }
  });

  test('real schedule coefficients: fused equals unfused', () => {
    const { w, b, wd, bd, e, x } = setup(3);
    const coeffs = coefficients(schedule, 4);
    const f = fuseLinearInput({
      weight: w,
      bias: b,
      inFeatures: nIn,
      outFeatures: nOut,
      layout: 'out-in',
      denoiser: { wd, bd, e },
      coeffs,
    });
    const fused = linearForward(x, rows, f.weight, f.bias, nIn, nOut, 'out-in');
    const ref = linearForward(
      denoiseInputLinear(x, rows, { wd, bd, e }, coeffs),
      rows,
      w,
      b,
      nIn,
      nOut,
      'out-in',
    );
    assert.ok(relErr(fused, ref) < 1e-5);
  });

  test('hand case: 1x1 layer', () => {
    // W = 2, b = 1, Wd = 0.5, bd = 0.25, e = 1, c1 = 0.1, c3 = 1.5:
    // W' = 2 (1.5 - 0.05) = 2.9; b' = 1 - 0.1 * 2 * (0.5 + 0.25) = 0.85
    const f = fuseLinearInput({
      weight: new Float32Array([2]),
      bias: new Float32Array([1]),
      inFeatures: 1,
      outFeatures: 1,
      layout: 'out-in',
      denoiser: {
        wd: new Float64Array([0.5]),
        bd: new Float64Array([0.25]),
        e: new Float64Array([1]),
      },
      coeffs: { c1: 0.1, c2: 0, c3: 1.5 },
    });
    assert.ok(Math.abs(f.weight[0]! - 2.9) < 1e-6);
    assert.ok(Math.abs(f.bias[0]! - 0.85) < 1e-6);
  });

  test('bias-less layer with a zero-offset denoiser needs no bias', () => {
    const f = fuseLinearInput({
      weight: new Float32Array([1, 2]),
      inFeatures: 2,
      outFeatures: 1,
      layout: 'out-in',
      denoiser: {
        wd: new Float64Array([1, 0, 0, 1]),
        bd: new Float64Array(2),
        e: new Float64Array(2),
      },
      coeffs: { c1: 0.1, c2: 0, c3: 1 },
    });
    assert.equal(f.hadBias, false);
    assert.equal(f.biasIsZero, true);
  });

  test('stochastic term is off by default, seeded and equals c2 W z when on', () => {
    const { w, b, wd, bd, e } = setup(4);
    const coeffs = { c1: 0.01, c2: 0.5, c3: 1 };
    const base = {
      weight: w,
      bias: b,
      inFeatures: nIn,
      outFeatures: nOut,
      layout: 'out-in' as const,
      denoiser: { wd, bd, e },
      coeffs,
    };
    const det = fuseLinearInput(base);
    const s1 = fuseLinearInput({ ...base, stochastic: { rng: new Rng(9) } });
    const s2 = fuseLinearInput({ ...base, stochastic: { rng: new Rng(9) } });
    assert.deepEqual(s1.bias, s2.bias);
    assert.deepEqual(s1.weight, det.weight);
    const z = new Rng(9).fillNormal(new Float64Array(nIn));
    const wz = linearForward(z, 1, w, null, nIn, nOut, 'out-in');
    for (let o = 0; o < nOut; o++)
      assert.ok(Math.abs(s1.bias[o]! - det.bias[o]! - 0.5 * wz[o]!) < 1e-5);
  });

  test('size mismatch names the layer', () => {
    assert.throws(
      () =>
        fuseLinearInput({
          weight: new Float32Array(6),
          inFeatures: 2,
          outFeatures: 3,
          layout: 'out-in',
          denoiser: { wd: new Float64Array(9), bd: new Float64Array(2), e: new Float64Array(2) },
          coeffs: { c1: 0, c2: 0, c3: 1 },
          name: 'blocks.0.mlp.fc1',
        }),
      /blocks\.0\.mlp\.fc1.*denoiser weight/,
    );
  });
});

describe('fuseConvOutput', () => {
  const coeffs = { c1: 0.25, c2: 0, c3: 1.1 };
  const [n, h, w, kh, kw] = [2, 7, 6, 3, 3];

  for (const groups of [1, 2]) {
    test(`fused conv == denoised conv output (stride 2, pad 1, groups ${groups})`, () => {
      const rng = new Rng(10 + groups);
      const cin = 4;
      const co = 6;
      const ipg = cin / groups;
      const x = rand(rng, n * cin * h * w);
      const wt = rand(rng, co * ipg * kh * kw);
      const b = rand(rng, co);
      const wd = rand(rng, co * co, 0.5);
      const opg = co / groups;
      // Group-block-diagonal denoiser so the grouped shape can be kept.
      for (let o = 0; o < co; o++)
        for (let p = 0; p < co; p++)
          if (Math.floor(o / opg) !== Math.floor(p / opg)) wd[o * co + p] = 0;
      const c = rand(rng, co);
      const opts = {
        weight: wt,
        bias: b,
        outChannels: co,
        inChannelsPerGroup: ipg,
        kernelH: kh,
        kernelW: kw,
        groups,
        denoiser: { wd, c },
        coeffs,
      };
      const f = fuseConvOutput(opts);
      assert.equal(f.groups, groups);
      // With the product Wd·W given (as the closed form makes it): the same weight.
      const product = matmul(wd, wt, co, co, ipg * kh * kw);
      const viaProduct = fuseConvOutput({ ...opts, product });
      assert.ok(relErr(viaProduct.weight, f.weight) < 1e-6);
      assert.deepEqual(viaProduct.bias, f.bias);
      const { y, oh, ow } = conv2d(x, [n, cin, h, w], wt, [co, ipg, kh, kw], b, 2, 1, groups);
      const ref = denoiseOutputChannels(y, n, co, oh * ow, { wd, c }, coeffs);
      const fused = conv2d(x, [n, cin, h, w], f.weight, [co, ipg, kh, kw], f.bias, 2, 1, groups).y;
      assert.ok(relErr(fused, ref) < 1e-5, `rel err ${relErr(fused, ref)}`);
      assert.ok(relErr(y, ref) > 0.05, 'denoiser visible');
    });
  }

  test('groups 2 with a cross-group denoiser: refused, or exact as a dense conv when allowed', () => {
    const rng = new Rng(20);
    const [cin, co, groups] = [4, 4, 2];
    const ipg = cin / groups;
    const x = rand(rng, n * cin * h * w);
    const wt = rand(rng, co * ipg * kh * kw);
    const wd = rand(rng, co * co, 0.5);
    const c = rand(rng, co);
    const opts = {
      weight: wt,
      outChannels: co,
      inChannelsPerGroup: ipg,
      kernelH: kh,
      kernelW: kw,
      groups,
      denoiser: { wd, c },
      coeffs,
      name: 'layer1.0.conv2',
    };
    assert.throws(
      () => fuseConvOutput(opts),
      (e: Error) => e instanceof UsageError && /layer1\.0\.conv2/.test(e.message),
    );
    const f = fuseConvOutput({ ...opts, allowDenseExpansion: true });
    // A product of the grouped weight does not apply to the dense one: it is not used.
    const product = new Float64Array(co * ipg * kh * kw).fill(1e6);
    assert.deepEqual(fuseConvOutput({ ...opts, allowDenseExpansion: true, product }), f);
    assert.equal(f.groups, 1);
    assert.equal(f.inChannelsPerGroup, cin);
    assert.equal(f.hadBias, false);
    const { y, oh, ow } = conv2d(x, [n, cin, h, w], wt, [co, ipg, kh, kw], null, 2, 1, groups);
    const ref = denoiseOutputChannels(y, n, co, oh * ow, { wd, c }, coeffs);
    const fused = conv2d(x, [n, cin, h, w], f.weight, [co, cin, kh, kw], f.bias, 2, 1, 1).y;
    assert.ok(relErr(fused, ref) < 1e-5, `rel err ${relErr(fused, ref)}`);
  });
});
