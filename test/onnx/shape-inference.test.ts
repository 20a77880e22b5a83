// Shape inference: symbolic batches through Reshape, the PyTorch-export shape subgraph
// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), broadcasting, and conv/pool output
// sizes worked out by hand (and checked against what ONNX Runtime actually produces).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelError } from '../../src/util/errors.js';
import { GraphBuilder, type Value } from '../../src/onnx/builder.js';
import type { Dim } from '../../src/onnx/ir.js';
import { inferShapes } from '../../src/onnx/shapes.js';
import { makeTensor, numel } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';

/** Asserts `fn` throws a ModelError whose message contains every fragment. */
function throwsModel(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelError, `expected a ModelError, got ${String(e)}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `'${e.message}' lacks '${f}'`);
    return true;
  });
}

describe('Reshape with a symbolic batch', () => {
  test('-1 absorbs static factors next to the batch, and the inverse reshape recovers N', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 4, 6]);
    const flat = b.reshape(x, [-1, 6]);
    assert.deepEqual(flat.shape, ['N*4', 6]);
    const back = b.reshape(flat, [-1, 4, 6]);
    assert.deepEqual(back.shape, ['N', 4, 6]);
    // 0 copies the input dim (the batch), -1 takes the rest.
    assert.deepEqual(b.reshape(x, [0, -1]).shape, ['N', 24]);
    assert.deepEqual(b.reshape(x, [0, 2, -1]).shape, ['N', 2, 12]);
    // Static shapes: the product is checked, and the node is named on failure.
    const s = b.input('s', 'float32', [2, 3, 4]);
    assert.deepEqual(b.reshape(s, [-1, 4]).shape, [6, 4]);
    assert.deepEqual(b.reshape(s, [4, -1, 2]).shape, [4, 3, 2]);
    throwsModel(
      () => b.op1('Reshape', [s, b.ints([-1, 5])], {}, 'bad_reshape'),
      "node 'bad_reshape' (Reshape)",
      '24 elements',
    );
    throwsModel(
      () => b.op1('Reshape', [s, b.ints([-1, -1])], {}, 'two_neg'),
      "node 'two_neg'",
      'more than one -1',
    );
  });

  test('a -1 that cannot be expressed from the input symbols becomes unknown, not wrong', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 'T', 6]);
    // N*T*6 / (T*4) is not an integer multiple of symbols: unknown.
    const y = b.op1('Reshape', [x, b.ints([-1, 4])]);
    assert.deepEqual(y.shape, [null, 4]);
  });
});

describe('the PyTorch export shape pattern', () => {
  test('Shape -> Gather -> Unsqueeze -> Concat -> Reshape infers exact shapes', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 'T', 64]);
    const shape = b.op1('Shape', [x]);
    assert.deepEqual(shape.shape, [3]);
    const n = b.op1('Gather', [shape, b.constant(makeTensor('int64', [], [0]), 'i0')], { axis: 0 });
    const t = b.op1('Gather', [shape, b.constant(makeTensor('int64', [], [1]), 'i1')], { axis: 0 });
    assert.deepEqual(n.shape, [], 'a scalar index gives a scalar');
    const nu = b.unsqueeze(n, [0]);
    const tu = b.unsqueeze(t, [0]);
    const target = b.concat([nu, tu, b.ints([4, 16])], 0);
    assert.deepEqual(target.shape, [4]);
    assert.deepEqual(b.knownInts(target), ['N', 'T', 4, 16]);
    // The multi-head split, then the merge back with the same pattern and a -1.
    const heads = b.op1('Reshape', [x, target]);
    assert.deepEqual(heads.shape, ['N', 'T', 4, 16]);
    const perm = b.transpose(heads, [0, 2, 1, 3]);
    assert.deepEqual(perm.shape, ['N', 4, 'T', 16]);
    const merge = b.concat([nu, b.ints([-1])], 0);
    const flat = b.op1('Reshape', [perm, merge]);
    assert.deepEqual(flat.shape, ['N', 'T*64']);
    // Shape with start/end (opset 15) gives the tail only.
    const tail = b.op1('Shape', [x], { start: 1 });
    assert.deepEqual(b.knownInts(tail), ['T', 64]);
  });

  test('the same graph, re-inferred from scratch by inferShapes, agrees', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 3, 8, 8]);
    const n = b.op1('Gather', [b.op1('Shape', [x]), b.ints([0])], { axis: 0 });
    const y = b.op1('Reshape', [x, b.concat([n, b.ints([-1])], 0)]);
    b.output(y, 'y');
    const inferred = inferShapes(b.graph, 17);
    assert.deepEqual(inferred.get('y')!.shape, ['N', 192]);
    assert.deepEqual(inferred.get(y.name)!.shape, ['N', 192]);
  });
});

describe('broadcasting', () => {
  test('numpy rules with symbolic dims', () => {
    const b = new GraphBuilder();
    const a = b.input('a', 'float32', ['N', 3]);
    const row = b.input('row', 'float32', [1, 3]);
    const col = b.input('col', 'float32', ['N', 1]);
    const m = b.input('m', 'float32', [1, 'M']);
    const s = b.input('s', 'float32', []);
    const v = b.input('v', 'float32', [5, 1, 3]);
    assert.deepEqual(b.add(a, row).shape, ['N', 3]);
    assert.deepEqual(b.mul(col, m).shape, ['N', 'M']);
    assert.deepEqual(b.sub(a, s).shape, ['N', 3]);
    assert.deepEqual(b.add(v, a).shape, [5, 'N', 3]);
  });

  test('incompatible static dims fail naming the node and both shapes', () => {
    const b = new GraphBuilder();
    const a = b.input('a', 'float32', [2, 3]);
    const c = b.input('c', 'float32', [4]);
    throwsModel(
      () => b.op1('Add', [a, c], {}, 'the_add'),
      "node 'the_add' (Add)",
      'cannot broadcast',
      '[2,3]',
      '[4]',
    );
    const d = b.input('d', 'float32', ['N', 3]);
    const e = b.input('e', 'float32', [2, 'N', 4]);
    throwsModel(
      () => b.op1('Mul', [d, e], {}, 'the_mul'),
      "node 'the_mul' (Mul)",
      'cannot broadcast',
    );
  });

  test('mixed dtypes fail naming the node', () => {
    const b = new GraphBuilder();
    const a = b.input('a', 'float32', [2]);
    const i = b.input('i', 'int64', [2]);
    throwsModel(() => b.op1('Add', [a, i], {}, 'mixed'), "node 'mixed' (Add)", 'int64', 'float32');
  });
});

interface WindowCase {
  what: string;
  op: 'Conv' | 'MaxPool' | 'AveragePool';
  x: number[];
  /** Conv weight dims (Conv only). */
  w?: number[];
  attrs: Record<string, number | number[] | string>;
  /** Hand-computed output shape. */
  want: number[];
}

// Output size per spatial axis: floor((n + pb + pe - (d (k - 1) + 1)) / s) + 1; with
// ceil_mode the ceiling, minus one when that last window would start in the end padding.
const windowCases: WindowCase[] = [
  {
    what: 'stride 2, pad 1, 3x3: (32 + 2 - 3) / 2 = 15.5 -> 16',
    op: 'Conv',
    x: [2, 3, 32, 32],
    w: [8, 3, 3, 3],
    attrs: { strides: [2, 2], pads: [1, 1, 1, 1] },
    want: [2, 8, 16, 16],
  },
  {
    what: 'dilation 2 (effective kernel 5): 12 - 5 + 1 = 8; asymmetric pads 0/2 and 1/3',
    op: 'Conv',
    x: [1, 2, 12, 10],
    w: [4, 2, 3, 3],
    attrs: { dilations: [2, 1], pads: [0, 1, 2, 3] },
    // H: 12 + 0 + 2 - 5 + 1 = 10; W: 10 + 1 + 3 - 3 + 1 = 12.
    want: [1, 4, 10, 12],
  },
  {
    what: 'kernel 5, dilation 2, stride 3, pad 2: (17 + 4 - 9) / 3 + 1 = 5; groups 2',
    op: 'Conv',
    x: [1, 4, 17, 17],
    w: [6, 2, 5, 5],
    attrs: { dilations: [2, 2], strides: [3, 3], pads: [2, 2, 2, 2], group: 2 },
    want: [1, 6, 5, 5],
  },
  {
    what: 'auto_pad SAME_UPPER, stride 2 on 7: ceil(7 / 2) = 4',
    op: 'Conv',
    x: [1, 1, 7, 7],
    w: [1, 1, 3, 3],
    attrs: { strides: [2, 2], auto_pad: 'SAME_UPPER' },
    want: [1, 1, 4, 4],
  },
  {
    what: '1-D conv, stride 4, no pad: (20 - 4) / 4 + 1 = 5',
    op: 'Conv',
    x: [1, 3, 20],
    w: [2, 3, 4],
    attrs: { strides: [4] },
    want: [1, 2, 5],
  },
  {
    what: 'max pool 3x3 stride 2 on 8: floor 2.5 -> 3',
    op: 'MaxPool',
    x: [1, 2, 8, 8],
    attrs: { kernel_shape: [3, 3], strides: [2, 2] },
    want: [1, 2, 3, 3],
  },
  {
    what: 'same with ceil_mode: ceil 2.5 -> 4',
    op: 'MaxPool',
    x: [1, 2, 8, 8],
    attrs: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 },
    want: [1, 2, 4, 4],
  },
  {
    what: 'ceil_mode whose last window would start in the end padding: 5, k 2, s 2, pad 1 -> 3',
    op: 'MaxPool',
    x: [1, 1, 5, 5],
    attrs: { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 },
    // ceil((5 + 2 - 2) / 2) + 1 = 4, but window 4 starts at padded index 6 = 5 + 1: dropped.
    want: [1, 1, 3, 3],
  },
  {
    what: 'max pool with dilation 2 and pad 1: (9 + 2 - 5) / 1 + 1 = 7',
    op: 'MaxPool',
    x: [1, 1, 9, 9],
    attrs: { kernel_shape: [3, 3], dilations: [2, 2], pads: [1, 1, 1, 1] },
    want: [1, 1, 7, 7],
  },
  {
    what: 'average pool 2x2 stride 2, ceil_mode on 7 (last window partial but inside): 4',
    op: 'AveragePool',
    x: [1, 3, 7, 6],
    attrs: { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 },
    want: [1, 3, 4, 3],
  },
];

describe('conv and pool output sizes', () => {
  for (const c of windowCases) {
    test(`${c.op}: ${c.what}`, async () => {
      const b = new GraphBuilder({ seed: 1 });
      const x = b.input('x', 'float32', c.x);
      const ins: Value[] = [x];
      if (c.w) ins.push(b.param('w', c.w, { kind: 'uniform', bound: 1 }));
      const y = b.op1(c.op, ins, c.attrs);
      assert.deepEqual(y.shape, c.want);
      // ONNX Runtime computes the same shape.
      b.output(y, 'y');
      const s = await Session.create(b.build().model, { threads: 1 });
      const out = await s.run({ x: makeTensor('float32', c.x, new Float32Array(numel(c.x))) });
      assert.deepEqual(out.y!.dims, c.want);
      await s.release();
    });
  }

  test('a symbolic batch passes through, and unknown spatial dims stay unknown', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 3, 32, 'W']);
    const w = b.param('w', [8, 3, 3, 3], { kind: 'zeros' });
    const y = b.conv(x, w, null, { strides: [2, 2], pads: [1, 1, 1, 1] });
    assert.deepEqual(y.shape, ['N', 8, 16, null] satisfies Dim[]);
    const p = b.op1('MaxPool', [y], { kernel_shape: [2, 2], strides: [2, 2] });
    assert.deepEqual(p.shape, ['N', 8, 8, null]);
    assert.deepEqual(b.op1('GlobalAveragePool', [p]).shape, ['N', 8, 1, 1]);
  });

  test('channel and group mismatches fail naming the node', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [1, 8, 5, 5]);
    const w = b.param('w', [16, 2, 3, 3], { kind: 'zeros' });
    assert.deepEqual(b.op1('Conv', [x, w], { group: 4 }).shape, [1, 16, 3, 3]);
    throwsModel(
      () => b.op1('Conv', [x, w], { group: 2 }, 'grouped'),
      "node 'grouped' (Conv)",
      '8 channels',
      'group 2',
    );
    throwsModel(
      () => b.op1('MaxPool', [x], {}, 'no_kernel'),
      "node 'no_kernel' (MaxPool)",
      'kernel_shape',
    );
  });
});
