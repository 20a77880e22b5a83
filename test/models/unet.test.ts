// The DDPM U-Net presets: outputs and block taps of the right shapes, parameter names,
// every parameter reached by the epsilon-prediction loss with a finite, non-zero gradient.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ddpmFeeds, ddpmTrainingGraph } from '../../src/diffusion/objective.js';
import { ddpmSchedule } from '../../src/diffusion/schedule.js';
import { ParamStore } from '../../src/models/params.js';
import { getDiffusionPreset, getPreset } from '../../src/models/registry.js';
import {
  EPS_NAME,
  pooledName,
  tapName,
  unetInitialWeights,
  unetModel,
} from '../../src/models/unet-graph.js';
import { float32 } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { TrainStep } from '../../src/train/step.js';
import { Rng } from '../../src/util/rng.js';

describe('ddpm-unet-fmnist', () => {
  const def = getDiffusionPreset('ddpm-unet-fmnist');

  test('widths 32/64/128 at 28/14/7: block outputs, eps, parameter count', async () => {
    assert.deepEqual(def.blocks, ['down.0', 'down.1', 'down.2', 'mid', 'up.2', 'up.1', 'up.0']);
    const store = unetInitialWeights(def);
    // About 2.1M parameters (ResNet-tiny has 0.3M): a fixed architecture, so a change shows here.
    assert.equal(store.totalCount(), 2_101_153);
    const s = await Session.create(unetModel(def, store, { taps: def.blocks }), { threads: 1 });
    const rng = new Rng(0);
    const out = await s.run({
      input: float32([2, 1, 28, 28], rng.fillNormal(new Float32Array(2 * 784))),
      timestep: float32([2], [0, 999]),
    });
    await s.release();
    const shapes = Object.fromEntries(def.blocks.map((b) => [b, out[tapName(b)]!.dims]));
    assert.deepEqual(shapes, {
      'down.0': [2, 32, 28, 28],
      'down.1': [2, 64, 14, 14],
      'down.2': [2, 128, 7, 7],
      mid: [2, 128, 7, 7],
      'up.2': [2, 128, 7, 7],
      'up.1': [2, 64, 14, 14],
      'up.0': [2, 32, 28, 28],
    });
    assert.deepEqual(out[EPS_NAME]!.dims, [2, 1, 28, 28]);
    assert.ok(Array.from(out[EPS_NAME]!.data as Float32Array).every(Number.isFinite));
  });

  test('is not a classifier preset', () => {
    assert.throws(() => getPreset('ddpm-unet-fmnist'), /unknown model preset/);
  });
});

describe('ddpm-unet-micro', () => {
  const def = getDiffusionPreset('ddpm-unet-micro');

  test('parameter names of the DDPM layout', () => {
    const names = unetInitialWeights(def).names();
    for (const n of [
      'time_embed.0.weight',
      'time_embed.2.bias',
      'conv_in.weight',
      'down.0.res.0.norm1.weight',
      'down.0.res.0.conv1.weight',
      'down.0.res.0.temb_proj.weight',
      'down.0.res.0.conv2.bias',
      'down.0.downsample.weight',
      'down.1.attn.0.qkv.weight',
      'mid.res.0.conv1.weight',
      'mid.attn.proj.weight',
      'mid.res.1.norm2.bias',
      'up.1.res.0.skip.weight',
      'up.1.upsample.conv.weight',
      'up.0.res.0.skip.weight',
      'norm_out.weight',
      'conv_out.weight',
    ]) {
      assert.ok(names.includes(n), `missing ${n} in ${names.join(', ')}`);
    }
  });

  test('pooled taps are the block outputs averaged over positions', async () => {
    const store = unetInitialWeights(def, 3);
    const model = unetModel(def, store, { eps: false, taps: ['mid'], pooled: ['mid'] });
    const s = await Session.create(model, { threads: 1 });
    const rng = new Rng(1);
    const out = await s.run({
      input: float32([3, 1, 8, 8], rng.fillNormal(new Float32Array(3 * 64))),
      timestep: float32([3], [0, 10, 500]),
    });
    await s.release();
    const map = out[tapName('mid')]!;
    const pooled = out[pooledName('mid')]!.data as Float32Array;
    const [n, c, h, w] = map.dims;
    for (let i = 0; i < n! * c!; i++) {
      let m = 0;
      for (let k = 0; k < h! * w!; k++) m += (map.data as Float32Array)[i * h! * w! + k]!;
      assert.ok(Math.abs(pooled[i]! - m / (h! * w!)) < 1e-5);
    }
    assert.throws(() => unetModel(def, store, { taps: ['middle'] }), /has no block 'middle'/);
  });

  test('every parameter gets a finite, non-zero gradient from the DDPM loss', async () => {
    const g = ddpmTrainingGraph(def);
    const built = g.b.build();
    const store = ParamStore.fromInitializers(built.model.graph.initializers, built.params);
    const step = await TrainStep.create({
      model: built.model,
      loss: g.loss,
      trainable: built.params,
      session: { threads: 1 },
    });
    const rng = new Rng(5);
    const px = new Float32Array(4 * 64).map(() => rng.uniform());
    const r = await step.run(ddpmFeeds(px, [4, 1, 8, 8], ddpmSchedule(), rng), store);
    await step.release();
    assert.ok(Number.isFinite(r.loss) && r.loss > 0.1, `loss ${r.loss}`);
    assert.equal(step.graph.unreachable.length, 0);
    for (const name of built.params) {
      const gr = r.grads.get(name)!;
      assert.ok(gr.every(Number.isFinite), `${name}: non-finite gradient`);
      assert.ok(
        gr.some((v) => v !== 0),
        `${name}: zero gradient`,
      );
    }
  });
});
