// Declared sizes are bounded before anything is allocated from them: the crafted models of
// the hardening report (a Reshape / Expand / ConstantOfShape whose shape input is declared
// int64[N] with N = 2^26, 2^31 - 1 or 2^32; a 2^40 input dim; rank over 64; a duplicated
// initializer name) each fail with a ModelError naming the value or node, and the new
// shape rules (Resize, Einsum, GroupNormalization, DepthToSpace, TopK) give hand-worked
// shapes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { emptyGraph, type Graph, makeModel } from '../../src/onnx/ir.js';
import { MAX_RANK } from '../../src/onnx/limits.js';
import { decodeModel, encodeModel } from '../../src/onnx/serialize.js';
import { inferShapes } from '../../src/onnx/shapes.js';
import { float32, makeTensor } from '../../src/onnx/tensor.js';
import { ModelError } from '../../src/util/errors.js';

const { onnx } = onnxProto;

/** Asserts `fn` throws a ModelError whose message matches every pattern. */
function refused(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelError, `expected a ModelError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

/** x float32 [2, 3] and s int64 [n] (a declared, not a constant, shape) into `op`. */
function shapeFromInput(op: 'Reshape' | 'Expand' | 'ConstantOfShape', n: number): Graph {
  const g = emptyGraph('crafted');
  g.inputs.push({ name: 'x', dtype: 'float32', shape: [2, 3] });
  g.inputs.push({ name: 's', dtype: 'int64', shape: [n] });
  g.nodes.push({
    name: `the_${op}`,
    opType: op,
    domain: '',
    inputs: op === 'ConstantOfShape' ? ['s'] : ['x', 's'],
    outputs: ['y'],
    attrs: {},
  });
  g.outputs.push({ name: 'y', dtype: 'float32', shape: null });
  return g;
}

describe('shape inputs declared int64[N] with a huge N', () => {
  for (const op of ['Reshape', 'Expand', 'ConstantOfShape'] as const) {
    for (const n of [2 ** 26, 2 ** 31 - 1, 2 ** 32]) {
      test(`${op} with int64[${n}]: a ModelError naming the node, nothing allocated`, () => {
        // In memory: shape inference alone.
        refused(
          () => inferShapes(shapeFromInput(op, n), 17),
          new RegExp(`node 'the_${op}' \\(${op}\\): the shape input declares ${n} dims`),
          /over the limit of 64/,
        );
        // From a file (the 206-byte model of the report): refused when read (where the
        // declared int64[N] alone passes the machine's memory) or when inferred.
        const bytes = encodeModel(makeModel(shapeFromInput(op, n)));
        refused(
          () => inferShapes(decodeModel(bytes, { source: 'crafted.onnx' }).graph, 17),
          new RegExp(
            `^crafted\\.onnx: graph input 's' has shape \\[${n}\\]|^node 'the_${op}' \\(${op}\\): the shape input declares ${n} dims`,
          ),
        );
      });
    }
    test(`${op} with int64[${MAX_RANK}] is accepted (rank ${MAX_RANK} is the limit)`, () => {
      const types = inferShapes(shapeFromInput(op, MAX_RANK), 17);
      assert.equal(types.get('y')!.shape!.length, MAX_RANK);
    });
  }
});

describe('declared shapes and tensors', () => {
  test('a 2^40 input dim, a negative-free unsafe dim, and rank 65 are refused naming the input', () => {
    const g = emptyGraph('g');
    g.inputs.push({ name: 'x', dtype: 'float32', shape: [1, 2 ** 40] });
    g.outputs.push({ name: 'x', dtype: 'float32', shape: null });
    refused(
      () => decodeModel(encodeModel(makeModel(g)), { source: 'big.onnx' }),
      /^big\.onnx: graph input 'x' has shape \[1,1099511627776\] \(float32\): 4096 GB, more than this machine's/,
    );
    g.inputs[0]!.shape = Array(65).fill(1);
    refused(
      () => decodeModel(encodeModel(makeModel(g)), { source: 'rank.onnx' }),
      /^rank\.onnx: graph input 'x' has rank 65, over the limit of 64/,
    );
    // value_info is bounded the same way.
    g.inputs[0]!.shape = [1, 4];
    g.valueInfo.set('v', { name: 'v', dtype: 'float32', shape: [2 ** 50, 2 ** 50] });
    refused(
      () => decodeModel(encodeModel(makeModel(g)), { source: 'vi.onnx' }),
      /^vi\.onnx: value_info of 'v' has shape/,
    );
  });

  test('a negative declared dim reads as unknown', () => {
    const g = emptyGraph('g');
    g.inputs.push({ name: 'x', dtype: 'float32', shape: ['N', 4] });
    g.outputs.push({ name: 'x', dtype: 'float32', shape: null });
    const proto = onnx.ModelProto.decode(encodeModel(makeModel(g)));
    proto.graph!.input![0]!.type!.tensorType!.shape!.dim![1] =
      onnx.TensorShapeProto.Dimension.create({ dimValue: -1 });
    const m = decodeModel(onnx.ModelProto.encode(proto).finish(), { source: 'neg.onnx' });
    assert.deepEqual(m.graph.inputs[0]!.shape, ['N', null]);
  });

  test('a duplicated initializer name is refused, naming it', () => {
    const g = emptyGraph('g');
    g.inputs.push({ name: 'x', dtype: 'float32', shape: [2] });
    g.initializers.set('w', float32([2], [1, 2]));
    g.nodes.push({
      name: 'add',
      opType: 'Add',
      domain: '',
      inputs: ['x', 'w'],
      outputs: ['y'],
      attrs: {},
    });
    g.outputs.push({ name: 'y', dtype: 'float32', shape: [2] });
    const proto = onnx.ModelProto.decode(encodeModel(makeModel(g)));
    proto.graph!.initializer!.push(onnx.TensorProto.create({ ...proto.graph!.initializer![0]! }));
    refused(
      () => decodeModel(onnx.ModelProto.encode(proto).finish(), { source: 'dup.onnx' }),
      /^dup\.onnx: initializer 'w' is defined twice$/,
    );
  });

  test('a tensor of rank 65, or one too large to load, is refused before allocation', () => {
    const g = emptyGraph('g');
    g.initializers.set('w', float32([1], [1]));
    const proto = onnx.ModelProto.decode(encodeModel(makeModel(g)));
    const t = proto.graph!.initializer![0]!;
    t.dims = Array(65).fill(1);
    refused(
      () => decodeModel(onnx.ModelProto.encode(proto).finish(), { source: 't.onnx' }),
      /t\.onnx: tensor 'w' has rank 65, over the limit of 64/,
    );
    t.dims = [2 ** 20, 2 ** 20];
    refused(
      () => decodeModel(onnx.ModelProto.encode(proto).finish(), { source: 't.onnx' }),
      /t\.onnx: tensor 'w' has dims \[1048576,1048576\] \(4398046511104 bytes\), too large to load/,
    );
  });

  test('an inferred shape over memory is refused naming the node (Range to 2^45)', () => {
    const b = new GraphBuilder();
    const start = b.constant(makeTensor('int64', [], [0]), 'start');
    const limit = b.constant(makeTensor('int64', [], [2 ** 45]), 'limit');
    const delta = b.constant(makeTensor('int64', [], [1]), 'delta');
    refused(
      () => b.op1('Range', [start, limit, delta], {}, 'huge_range'),
      /node 'huge_range' \(Range\) output '.*' has shape \[35184372088832\] \(int64\)/,
    );
  });
});

describe('shape rules for MobileNet, ConvNeXt and FPN ops', () => {
  test('Resize: scales (floor), sizes, axes (opset 18), and unknowns kept unknown', () => {
    const b = new GraphBuilder({ opset: 18 });
    const x = b.input('x', 'float32', ['N', 3, 7, 10]);
    const roi = b.constant(float32([0], []), 'roi');
    const scales = b.constant(float32([4], [1, 1, 2, 0.55]), 'scales');
    // floor(7·2) = 14, floor(10·0.55) = 5.
    assert.deepEqual(b.op1('Resize', [x, roi, scales]).shape, ['N', 3, 14, 5]);
    const sizes = b.constant(makeTensor('int64', [2], [20, 30]), 'sizes');
    const bySize = b.op1('Resize', [x, null, null, sizes], { axes: [2, 3] });
    assert.deepEqual(bySize.shape, ['N', 3, 20, 30]);
    // A policy that keeps the aspect ratio depends on both: unknown, not guessed.
    const kept = b.op1('Resize', [x, null, null, sizes], {
      axes: [2, 3],
      keep_aspect_ratio_policy: 'not_larger',
    });
    assert.deepEqual(kept.shape, ['N', 3, null, null]);
    // Scales computed at run time: the resized dims are unknown; 1 keeps a symbol.
    const dyn = b.input('sc', 'float32', [4]);
    assert.deepEqual(b.op1('Resize', [x, null, dyn]).shape, [null, null, null, null]);
    const one = b.constant(float32([4], [1, 1, 2, 2]), 'one');
    assert.deepEqual(b.op1('Resize', [x, null, one]).shape, ['N', 3, 14, 20]);
    assert.throws(
      () => b.op1('Resize', [x, null, b.constant(float32([2], [2, 2]), 's2')]),
      /scales has 2 entries for 4 resized axes/,
    );
  });

  test('Einsum: explicit and implicit outputs, ellipsis broadcasting, bad equations', () => {
    const b = new GraphBuilder();
    const a = b.input('a', 'float32', ['N', 4, 5]);
    const w = b.input('w', 'float32', [5, 6]);
    assert.deepEqual(b.op1('Einsum', [a, w], { equation: 'nij,jk->nik' }).shape, ['N', 4, 6]);
    // Implicit: letters used once, in alphabetical order: 'i','k','n'.
    assert.deepEqual(b.op1('Einsum', [a, w], { equation: 'nij,jk' }).shape, [4, 6, 'N']);
    const c = b.input('c', 'float32', [2, 1, 4, 5]);
    const d = b.input('d', 'float32', [3, 5, 7]);
    assert.deepEqual(
      b.op1('Einsum', [c, d], { equation: '...ij,...jk->...ik' }).shape,
      [2, 3, 4, 7],
    );
    assert.deepEqual(b.op1('Einsum', [a], { equation: 'nij->n' }).shape, ['N']);
    assert.throws(
      () => b.op1('Einsum', [a, w], { equation: 'ij,jk->ik' }),
      /does not fit its rank 3/,
    );
    assert.throws(() => b.op1('Einsum', [a, w], { equation: 'nij,kk->nik' }), /letter 'k' is 5/);
    assert.throws(() => b.op1('Einsum', [a, w], { equation: 'nij,jk->nz' }), /output letter 'z'/);
  });

  test('GroupNormalization, HardSwish, Gelu, DepthToSpace, SpaceToDepth, TopK, NonZero', () => {
    const b = new GraphBuilder({ opset: 21 });
    const x = b.input('x', 'float32', ['N', 8, 6, 4]);
    const scale = b.input('g', 'float32', [8]);
    const gn = b.op1('GroupNormalization', [x, scale, scale], { num_groups: 4 });
    assert.deepEqual(gn.shape, ['N', 8, 6, 4]);
    assert.throws(
      () => b.op1('GroupNormalization', [x, scale, scale], { num_groups: 3 }),
      /8 channels do not split into 3 groups/,
    );
    assert.deepEqual(b.op1('HardSwish', [x]).shape, ['N', 8, 6, 4]);
    assert.deepEqual(b.op1('Gelu', [x], { approximate: 'tanh' }).shape, ['N', 8, 6, 4]);
    assert.deepEqual(b.op1('DepthToSpace', [x], { blocksize: 2 }).shape, ['N', 2, 12, 8]);
    assert.deepEqual(b.op1('SpaceToDepth', [x], { blocksize: 2 }).shape, ['N', 32, 3, 2]);
    const k = b.constant(makeTensor('int64', [1], [3]), 'k');
    const [vals, idx] = b.op('TopK', [x, k], { axis: 1 }, { outputs: 2 });
    assert.deepEqual(
      [vals!.shape, idx!.shape, idx!.dtype],
      [['N', 3, 6, 4], ['N', 3, 6, 4], 'int64'],
    );
    assert.deepEqual(b.op1('NonZero', [x]).shape, [4, null]);
  });
});
