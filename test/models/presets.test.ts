// Per preset (timm's test_models.py in spirit): output shapes, parameter names, and every
// trainable parameter receiving a finite, non-zero gradient.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildBackbone, getPreset } from '../../src/models/registry.js';
import { float32 } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { crossEntropy, oneHot, TARGET_NAME } from '../../src/train/losses.js';
import { ParamStore } from '../../src/models/params.js';
import { Rng } from '../../src/util/rng.js';
import { TrainStep } from '../../src/train/step.js';

for (const preset of ['vit-micro', 'resnet-micro']) {
  describe(preset, () => {
    const def = getPreset(preset, { numClasses: 3 });
    const [c, h, w] = def.inputShape;
    const rng = new Rng(3);
    const n = 4;
    const x = float32([n, c, h, w], rng.fillNormal(new Float32Array(n * c * h * w)));

    test('evaluation graph: logits [N, classes] = head(feature [N, featureDim])', async () => {
      const { model } = buildBackbone(def, 'eval', 0).b.build();
      const s = await Session.create(model, { threads: 1 });
      const out = await s.run({ input: x });
      assert.deepEqual(out.logits!.dims, [n, 3]);
      assert.deepEqual(out.feature!.dims, [n, def.featureDim]);
      // The logits are the classifier (timm `head`, torchvision `fc`) applied to the feature.
      const head = def.family === 'vit' ? 'head' : 'fc';
      const w = model.graph.initializers.get(`${head}.weight`)!.data as Float32Array;
      const bias = model.graph.initializers.get(`${head}.bias`)!.data as Float32Array;
      const f = out.feature!.data as Float32Array;
      const z = out.logits!.data as Float32Array;
      const d = def.featureDim;
      assert.ok(z.some((v) => v !== 0));
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < 3; k++) {
          let want = bias[k]!;
          for (let j = 0; j < d; j++) want += f[i * d + j]! * w[k * d + j]!;
          const got = z[i * 3 + k]!;
          assert.ok(
            Math.abs(got - want) <= 1e-5 * (1 + Math.abs(want)),
            `[${i}, ${k}]: ${got} vs ${want}`,
          );
        }
      }
      await s.release();
    });

    test('parameter names follow timm / torchvision', () => {
      const { params, buffers } = buildBackbone(def, 'eval', 0).b.build();
      const expected =
        def.family === 'vit'
          ? [
              'patch_embed.proj.weight',
              'cls_token',
              'pos_embed',
              'blocks.0.norm1.weight',
              'blocks.0.attn.qkv.weight',
              'blocks.0.attn.proj.bias',
              'blocks.1.mlp.fc1.weight',
              'blocks.1.mlp.fc2.weight',
              'norm.weight',
              'head.weight',
            ]
          : [
              'conv1.weight',
              'bn1.weight',
              'layer1.0.conv1.weight',
              'layer1.0.bn2.bias',
              'layer2.0.downsample.0.weight',
              'layer2.0.downsample.1.weight',
              'fc.weight',
              'fc.bias',
            ];
      for (const e of expected)
        assert.ok(params.includes(e), `missing parameter ${e} in ${params.join(', ')}`);
      if (def.family === 'resnet') {
        assert.ok(
          buffers.includes('bn1.running_mean') &&
            buffers.includes('layer2.0.downsample.1.running_var'),
        );
      }
    });

    test('every trainable parameter gets a finite, non-zero gradient', async () => {
      const tg = buildBackbone(def, 'train', 0);
      const { loss } = crossEntropy(tg.b, tg.logits, 3);
      tg.b.output(loss, 'loss');
      const built = tg.b.build();
      const step = await TrainStep.create({
        model: built.model,
        loss: 'loss',
        trainable: built.params,
        fed: built.buffers,
        bufferUpdates: new Map([...tg.ctx.bufferUpdates].map(([k, v]) => [k, v.name])),
        session: { threads: 1 },
      });
      const store = ParamStore.fromInitializers(built.model.graph.initializers, [
        ...built.params,
        ...built.buffers,
      ]);
      const r = await step.run(
        { input: x, [TARGET_NAME]: float32([n, 3], oneHot([0, 1, 2, 1], 3)) },
        store,
      );
      assert.ok(Number.isFinite(r.loss) && r.loss > 0);
      assert.equal(r.grads.size, built.params.length);
      assert.deepEqual(step.graph.unreachable, []);
      for (const [name, g] of r.grads) {
        assert.ok(g.every(Number.isFinite), `${name}: non-finite gradient`);
        assert.ok(
          g.some((v) => v !== 0),
          `${name}: all-zero gradient`,
        );
      }
      if (def.family === 'resnet') {
        // Running statistics were updated from the batch.
        assert.ok(store.get('bn1.running_mean').data.some((v) => v !== 0));
      }
      await step.release();
    });
  });
}
