// ParamStore (order, copies, errors naming close names) and the no-decay grouping rule.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelError, UsageError } from '../../src/util/errors.js';
import { ParamStore } from '../../src/models/params.js';
import { defaultDecayGroups, isNoDecay } from '../../src/train/params.js';

function sample(): ParamStore {
  const s = new ParamStore();
  s.set('blocks.0.norm1.weight', [4], Float32Array.from([1, 1, 1, 1]));
  s.set('blocks.1.norm1.weight', [4], Float32Array.from([2, 2, 2, 2]));
  s.set('head.weight', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6]));
  s.set('head.bias', [2], Float32Array.from([0, 1]));
  return s;
}

describe('ParamStore', () => {
  test('keeps insertion order; counts tensors and elements', () => {
    const s = sample();
    assert.deepEqual(s.names(), [
      'blocks.0.norm1.weight',
      'blocks.1.norm1.weight',
      'head.weight',
      'head.bias',
    ]);
    assert.equal(s.size, 4);
    assert.equal(s.totalCount(), 4 + 4 + 6 + 2);
    assert.deepEqual(
      s.entries().map((p) => p.shape),
      [[4], [4], [2, 3], [2]],
    );
    assert.ok(s.has('head.bias'));
    assert.ok(!s.has('head'));
  });

  test('clone is deep; toRecord and toTensors share the live data', () => {
    const s = sample();
    const c = s.clone();
    c.get('head.bias').data[0] = 42;
    c.get('head.weight').shape[0] = 7;
    assert.equal(s.get('head.bias').data[0], 0);
    assert.deepEqual(s.get('head.weight').shape, [2, 3]);
    const rec = s.toRecord();
    assert.deepEqual(Object.keys(rec), s.names());
    rec['head.bias']!.data[1] = 9;
    assert.equal(s.get('head.bias').data[1], 9);
    const t = s.toTensors(['head.weight']);
    assert.deepEqual([...t.keys()], ['head.weight']);
    assert.equal(t.get('head.weight')!.data, s.get('head.weight').data);
    assert.deepEqual(t.get('head.weight')!.dims, [2, 3]);
  });

  test('get of a missing name is a ModelError listing close names, closest first', () => {
    const s = sample();
    assert.throws(
      () => s.get('blocks.0.norm1.wieght'),
      (e: unknown) =>
        e instanceof ModelError &&
        /no parameter named 'blocks\.0\.norm1\.wieght' \(close: blocks\.0\.norm1\.weight, blocks\.1\.norm1\.weight\)/.test(
          e.message,
        ),
    );
    // Nothing close: no list.
    assert.throws(() => s.get('zzz'), /no parameter named 'zzz'$/);
  });

  test('set refuses a shape that does not match the data', () => {
    const s = new ParamStore();
    assert.throws(() => s.set('w', [2, 2], new Float32Array(3)), /'w'.*\[2, 2\] holds 4.*has 3/);
    assert.throws(() => s.set('w', [-1], new Float32Array(0)), ModelError);
  });

  test('fromTensors copies the data', () => {
    const data = Float32Array.from([1, 2]);
    const s = ParamStore.fromTensors(new Map([['x', { dtype: 'float32', dims: [2], data }]]));
    data[0] = 5;
    assert.equal(s.get('x').data[0], 1);
  });
});

describe('defaultDecayGroups', () => {
  test('biases, norms, BN, BNNeck, tokens and denoiser embeddings get no decay', () => {
    const names = [
      'patch_embed.proj.weight', // decay
      'blocks.0.attn.qkv.weight', // decay
      'blocks.0.attn.qkv.bias',
      'blocks.0.norm1.weight',
      'fc_norm.weight',
      'cls_token',
      'pos_embed',
      'bn1.weight',
      'layer1.0.downsample.0.weight', // decay (the shortcut conv)
      'layer1.0.downsample.1.weight', // the shortcut BatchNorm
      'bottleneck.weight',
      'blocks.0.mlp.fc1.denoise.embed',
      'blocks.0.mlp.fc1.denoise.weight', // decay
      'subnet.weight', // decay: 'bn' inside a segment does not count
    ];
    const [decay, none] = defaultDecayGroups(names, 0.1);
    assert.equal(decay!.name, 'decay');
    assert.equal(decay!.weightDecay, 0.1);
    assert.deepEqual(decay!.params, [
      'patch_embed.proj.weight',
      'blocks.0.attn.qkv.weight',
      'layer1.0.downsample.0.weight',
      'blocks.0.mlp.fc1.denoise.weight',
      'subnet.weight',
    ]);
    assert.equal(none!.name, 'no_decay');
    assert.equal(none!.weightDecay, 0);
    assert.equal(none!.params.length, names.length - 5);
  });

  test('with shapes, every parameter of rank <= 1 goes to no_decay; default decay 0.05', () => {
    const shapes = new Map([
      ['scale', [8]],
      ['proj.weight', [8, 8]],
    ]);
    const [decay, none] = defaultDecayGroups(['scale', 'proj.weight'], undefined, shapes);
    assert.deepEqual(decay!.params, ['proj.weight']);
    assert.equal(decay!.weightDecay, 0.05);
    assert.deepEqual(none!.params, ['scale']);
    assert.equal(isNoDecay('scale'), false);
    assert.throws(() => defaultDecayGroups(['w'], -1), UsageError);
  });
});
