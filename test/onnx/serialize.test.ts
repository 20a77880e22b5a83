// Reading and writing .onnx files: exact round trips, a model ONNX Runtime runs, tensors in
// the typed protobuf fields, external data (and refusing paths outside the model's
// folder), corrupt files, and atomic writes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { ModelError, UsageError } from '../../src/util/errors.js';
import { emptyGraph, type Graph, type Model, makeModel } from '../../src/onnx/ir.js';
import { decodeModel, encodeModel, readModel, writeModel } from '../../src/onnx/serialize.js';
import { float32, makeTensor } from '../../src/onnx/tensor.js';
import { Rng } from '../../src/util/rng.js';

const { onnx } = onnxProto;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'denoiserep-serialize-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * y = Reshape(Relu(x W + b), shape) with x [N, 2], W [2, 3], b [3] (float32) and
 * shape = [-1] (int64): the flattened activations.
 */
function mlpGraph(): Graph {
  const g = emptyGraph('mlp');
  g.inputs.push({ name: 'x', dtype: 'float32', shape: ['N', 2] });
  g.initializers.set('W', float32([2, 3], [1, -1, 2, 0.5, 1, -3]));
  g.initializers.set('b', float32([3], [0.25, 0, -1]));
  g.initializers.set('shape', makeTensor('int64', [1], [-1]));
  g.nodes.push(
    { name: 'mm', opType: 'MatMul', domain: '', inputs: ['x', 'W'], outputs: ['h'], attrs: {} },
    { name: 'add', opType: 'Add', domain: '', inputs: ['h', 'b'], outputs: ['a'], attrs: {} },
    { name: 'relu', opType: 'Relu', domain: '', inputs: ['a'], outputs: ['r'], attrs: {} },
    {
      name: 'flat',
      opType: 'Reshape',
      domain: '',
      inputs: ['r', 'shape'],
      outputs: ['y'],
      attrs: {},
    },
  );
  g.outputs.push({ name: 'y', dtype: 'float32', shape: [null] });
  g.valueInfo.set('h', { name: 'h', dtype: 'float32', shape: ['N', 3] });
  g.valueInfo.set('r', { name: 'r', dtype: 'float32', shape: null });
  return g;
}

/** The MLP plus a node of a private domain carrying one attribute of every type. */
function fullModel(): Model {
  const g = mlpGraph();
  const body = emptyGraph('body');
  body.inputs.push({ name: 'u', dtype: 'float64', shape: [null, 'K', 0] });
  body.initializers.set('k', makeTensor('uint8', [2], [7, 255]));
  body.nodes.push({
    name: 'inner',
    opType: 'Neg',
    domain: '',
    inputs: ['u'],
    outputs: ['v'],
    attrs: {},
  });
  body.outputs.push({ name: 'v', dtype: 'float64', shape: [null, 'K', 0] });
  body.valueInfo.set('v', { name: 'v', dtype: 'float64', shape: [null, 'K', 0] });
  g.nodes.push({
    name: 'carrier',
    opType: 'Carrier',
    domain: 'test.attrs',
    inputs: ['y', ''],
    outputs: ['z', ''],
    attrs: {
      f: { type: 'float', value: 0.5 },
      i: { type: 'int', value: -3 },
      big: { type: 'int', value: 2 ** 40 },
      s: { type: 'string', value: 'héllo' },
      t: { type: 'tensor', value: float32([2, 2], [1, 2, 3, 4]) },
      g: { type: 'graph', value: body },
      fs: { type: 'floats', value: [0.25, -1.5] },
      is: { type: 'ints', value: [1, -2, 2 ** 40] },
      ss: { type: 'strings', value: ['a', 'bé', ''] },
    },
  });
  g.initializers.set('big_ints', makeTensor('int64', [3], [-(2 ** 40), 0, 2 ** 52]));
  const model = makeModel(g, 17);
  model.opsetImports.push({ domain: 'test.attrs', version: 1 });
  model.metadata = { author: 'test', 'a key': 'a värde' };
  model.producerVersion = '9.9';
  return model;
}

describe('round trip', () => {
  test('decode(encode(m)) equals m: initializers, every attribute type, subgraph, dims, metadata', () => {
    const model = fullModel();
    const back = decodeModel(encodeModel(model), { source: 'mem.onnx' });
    assert.deepStrictEqual(back, model);
    // The typed arrays keep their element types (deepStrictEqual compares them too).
    assert.ok(back.graph.initializers.get('big_ints')!.data instanceof BigInt64Array);
    assert.equal(back.graph.initializers.get('big_ints')!.data[2], 2n ** 52n);
    // And a second trip is byte-identical to the first.
    assert.deepEqual(encodeModel(back), encodeModel(model));
  });

  test('the encoded model runs in onnxruntime-node with the hand-computed output', async () => {
    const bytes = encodeModel(makeModel(mlpGraph()));
    const s = await ort.InferenceSession.create(bytes);
    const x = new ort.Tensor('float32', Float32Array.from([1, 2, -1, 0]), [2, 2]);
    const { y } = await s.run({ x });
    // Row 1: [1, 2] W = [1 + 1, -1 + 2, 2 - 6] = [2, 1, -4]; + b = [2.25, 1, -5] -> relu.
    // Row 2: [-1, 0] W = [-1, 1, -2]; + b = [-0.75, 1, -3] -> relu.
    assert.deepEqual(y!.dims, [6]);
    assert.deepEqual(Array.from(y!.data as Float32Array), [2.25, 1, 0, 0, 1, 0]);
    await s.release();
  });
});

describe('int64 values', () => {
  test('INT64_MAX/MIN sentinels and huge ints survive as the clamped int64 extremes', () => {
    const g = mlpGraph();
    // Slice-1 style ends: INT64_MAX is 2^63 once it is a JS number.
    const max = Number(2n ** 63n - 1n);
    g.nodes.push({
      name: 'sl',
      opType: 'Slice',
      domain: '',
      inputs: ['y'],
      outputs: ['s'],
      attrs: {
        ends: { type: 'ints', value: [max, -(2 ** 63), 2 ** 70, -(2 ** 70), 7] },
        big: { type: 'int', value: max },
      },
    });
    // (The attribute form is opset 1's; the file says 11, the lowest opset read, since only
    // the encoding of the values matters here.)
    const bytes = encodeModel(makeModel(g, 11));
    // In the file: exactly INT64_MAX and INT64_MIN, not a wrapped value.
    const proto = onnx.ModelProto.decode(bytes);
    const attrs = proto.graph!.node!.find((n) => n.name === 'sl')!.attribute!;
    const ends = attrs.find((a) => a.name === 'ends')!.ints!.map(String);
    const i64max = String(2n ** 63n - 1n);
    const i64min = String(-(2n ** 63n));
    assert.deepEqual(ends, [i64max, i64min, i64max, i64min, '7']);
    assert.equal(String(attrs.find((a) => a.name === 'big')!.i), i64max);
    // Back in the IR: numbers >= 2^63 - 1 (that is, 2^63 as a double), and a second trip
    // gives the same file.
    const back = decodeModel(bytes, { source: 'slice.onnx' });
    const endsBack = back.graph.nodes.find((n) => n.name === 'sl')!.attrs.ends!;
    assert.deepEqual(endsBack, {
      type: 'ints',
      value: [2 ** 63, -(2 ** 63), 2 ** 63, -(2 ** 63), 7],
    });
    assert.deepEqual(encodeModel(back), bytes);
  });

  test('int64_data holding INT64_MAX decodes exactly into a BigInt64Array', () => {
    const T = onnx.TensorProto.DataType;
    const lim = { low: -1, high: 0x7fffffff, unsigned: false } as unknown as number;
    const proto = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        initializer: [
          { name: 'ends', dataType: T.INT64, dims: [2], int64Data: [lim, -1] },
          {
            name: 'u',
            dataType: T.UINT64,
            dims: [1],
            uint64Data: [{ low: -1, high: -1, unsigned: true }],
          },
        ],
      },
    });
    const m = decodeModel(onnx.ModelProto.encode(proto).finish(), { source: 'ends.onnx' });
    assert.deepEqual(
      m.graph.initializers.get('ends')!.data,
      BigInt64Array.from([2n ** 63n - 1n, -1n]),
    );
    assert.deepEqual(m.graph.initializers.get('u')!.data, BigUint64Array.from([2n ** 64n - 1n]));
  });
});

describe('raw data', () => {
  test('raw_data at an odd byte offset of the input is copied into aligned arrays', () => {
    const model = fullModel();
    const bytes = encodeModel(model);
    for (const shift of [1, 3, 5]) {
      const buf = new Uint8Array(bytes.length + shift);
      buf.set(bytes, shift);
      const back = decodeModel(buf.subarray(shift), { source: `shift-${shift}` });
      assert.deepStrictEqual(back, model);
    }
  });

  test('raw_data whose length disagrees with the dims names the tensor', () => {
    const proto = onnx.ModelProto.decode(encodeModel(makeModel(mlpGraph())));
    const b = proto.graph!.initializer!.find((t) => t.name === 'b')!;
    b.rawData = b.rawData!.subarray(0, 8);
    assert.throws(
      () => decodeModel(onnx.ModelProto.encode(proto).finish(), { source: 'len.onnx' }),
      (e: unknown) =>
        e instanceof ModelError &&
        e.message.includes("len.onnx: tensor 'b' has 8 bytes") &&
        e.message.includes('need 12'),
    );
  });

  test('an unsupported dtype (string tensor) and negative dims name the tensor', () => {
    const bad = (init: onnxProto.onnx.ITensorProto) =>
      onnx.ModelProto.encode(
        onnx.ModelProto.create({
          irVersion: 8,
          opsetImport: [{ domain: '', version: 17 }],
          graph: { name: 'g', initializer: [init] },
        }),
      ).finish();
    const T = onnx.TensorProto.DataType;
    assert.throws(
      () =>
        decodeModel(bad({ name: 'names', dataType: T.STRING, dims: [1] }), { source: 's.onnx' }),
      (e: unknown) =>
        e instanceof ModelError &&
        /s\.onnx: tensor 'names' has unsupported data type 8/.test(e.message),
    );
    assert.throws(
      () =>
        decodeModel(bad({ name: 'neg', dataType: T.FLOAT, dims: [-2, 3], floatData: [] }), {
          source: 'n.onnx',
        }),
      (e: unknown) =>
        e instanceof ModelError && /n\.onnx: tensor 'neg' has invalid dims/.test(e.message),
    );
  });
});

describe('attributes from other exporters', () => {
  test('an attribute with no type set is typed by the field it fills', () => {
    const proto = onnx.ModelProto.decode(encodeModel(makeModel(mlpGraph())));
    proto.graph!.node![0]!.attribute = [
      { name: 'perm', ints: [1, 0] },
      { name: 'alpha', f: 0.5 },
      { name: 'mode', s: new TextEncoder().encode('constant') },
    ];
    const m = decodeModel(onnx.ModelProto.encode(proto).finish(), { source: 'old.onnx' });
    assert.deepEqual(m.graph.nodes[0]!.attrs, {
      perm: { type: 'ints', value: [1, 0] },
      alpha: { type: 'float', value: 0.5 },
      mode: { type: 'string', value: 'constant' },
    });
  });

  test('a TENSOR attribute without a tensor names the node and the attribute', () => {
    const proto = onnx.ModelProto.decode(encodeModel(makeModel(mlpGraph())));
    proto.graph!.node![1]!.attribute = [
      { name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR },
    ];
    assert.throws(
      () => decodeModel(onnx.ModelProto.encode(proto).finish(), { source: 'att.onnx' }),
      (e: unknown) =>
        e instanceof ModelError &&
        e.message.includes("att.onnx: node 'add' attribute 'value'") &&
        e.message.includes('holds no tensor'),
    );
  });
});

describe('tensors in typed protobuf fields', () => {
  test('float_data, double_data, int64_data, int32_data (uint8, int8, bool), uint64_data (uint32)', () => {
    const T = onnx.TensorProto.DataType;
    const proto = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'typed',
        initializer: [
          { name: 'f', dataType: T.FLOAT, dims: [2, 2], floatData: [1.5, -2, 0, 3.25] },
          { name: 'd', dataType: T.DOUBLE, dims: [2], doubleData: [0.1, -1e300] },
          { name: 'l', dataType: T.INT64, dims: [3], int64Data: [-5, 0, 2 ** 40] },
          { name: 'u8', dataType: T.UINT8, dims: [3], int32Data: [0, 7, 255] },
          { name: 'i8', dataType: T.INT8, dims: [2], int32Data: [-128, 127] },
          { name: 'bo', dataType: T.BOOL, dims: [2], int32Data: [1, 0] },
          { name: 'u32', dataType: T.UINT32, dims: [1], uint64Data: [4_000_000_000] },
          { name: 'scalar', dataType: T.FLOAT, dims: [], floatData: [42] },
        ],
        output: [{ name: 'f', type: { tensorType: { elemType: T.FLOAT, shape: { dim: [] } } } }],
      },
    });
    const bytes = onnx.ModelProto.encode(proto).finish();
    const m = decodeModel(bytes, { source: 'typed.onnx' });
    const init = m.graph.initializers;
    assert.deepStrictEqual(init.get('f'), {
      dtype: 'float32',
      dims: [2, 2],
      data: Float32Array.from([1.5, -2, 0, 3.25]),
    });
    assert.deepStrictEqual(init.get('d'), {
      dtype: 'float64',
      dims: [2],
      data: Float64Array.from([0.1, -1e300]),
    });
    assert.deepStrictEqual(init.get('l'), {
      dtype: 'int64',
      dims: [3],
      data: BigInt64Array.from([-5n, 0n, 2n ** 40n]),
    });
    assert.deepStrictEqual(init.get('u8'), {
      dtype: 'uint8',
      dims: [3],
      data: Uint8Array.from([0, 7, 255]),
    });
    assert.deepStrictEqual(init.get('i8')!.data, Int8Array.from([-128, 127]));
    assert.deepStrictEqual(init.get('bo'), {
      dtype: 'bool',
      dims: [2],
      data: Uint8Array.from([1, 0]),
    });
    assert.deepStrictEqual(init.get('u32')!.data, Uint32Array.from([4_000_000_000]));
    assert.deepStrictEqual(init.get('scalar'), {
      dtype: 'float32',
      dims: [],
      data: Float32Array.from([42]),
    });
  });

  test('a typed field with the wrong number of values names the tensor', () => {
    const proto = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        initializer: [{ name: 'short', dataType: 1, dims: [3], floatData: [1, 2] }],
      },
    });
    assert.throws(
      () => decodeModel(onnx.ModelProto.encode(proto).finish(), { source: 'short.onnx' }),
      (e: unknown) =>
        e instanceof ModelError && /short\.onnx: tensor 'short' has 2 values/.test(e.message),
    );
  });
});

/**
 * The MLP with `W` moved to external data at `location` (12 zero bytes of padding before
 * it, to exercise the offset), written as model.onnx in `dir`; the side file is written
 * only when `payload` names it.
 */
function writeExternal(dir: string, location: string, payload?: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const proto = onnx.ModelProto.decode(encodeModel(makeModel(mlpGraph())));
  const w = proto.graph!.initializer!.find((t) => t.name === 'W')!;
  const raw = Buffer.from(w.rawData!);
  w.rawData = new Uint8Array();
  w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  w.externalData = [
    { key: 'location', value: location },
    { key: 'offset', value: '12' },
    { key: 'length', value: String(raw.length) },
  ];
  if (payload) fs.writeFileSync(payload, Buffer.concat([Buffer.alloc(12), raw]));
  const file = path.join(dir, 'model.onnx');
  fs.writeFileSync(file, onnx.ModelProto.encode(proto).finish());
  return file;
}

describe('external data', () => {
  test('an initializer in a side file (at an offset) loads via readModel', async () => {
    const dir = path.join(tmp, 'ext-ok');
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    const file = writeExternal(dir, 'data/weights.bin', path.join(dir, 'data', 'weights.bin'));
    const m = await readModel(file);
    assert.deepStrictEqual(m.graph.initializers.get('W'), mlpGraph().initializers.get('W'));
    assert.deepStrictEqual(m.graph.initializers.get('b'), mlpGraph().initializers.get('b'));
  });

  test('a location outside the folder (../x.bin, an absolute path) is refused naming the tensor', async () => {
    const dir = path.join(tmp, 'ext-bad', 'model');
    // The files exist: refusal must come from the path, not from a failed read.
    const outside = path.join(tmp, 'ext-bad', 'x.bin');
    const cases: [string, string][] = [
      ['../x.bin', outside],
      [outside, outside],
      ['sub/../../x.bin', outside],
    ];
    for (const [location, payload] of cases) {
      const file = writeExternal(dir, location, payload);
      await assert.rejects(readModel(file), (e: unknown) => {
        assert.ok(e instanceof ModelError, String(e));
        assert.match(e.message, /tensor 'W' refers to .*outside the model's folder; refused/);
        assert.ok(e.message.includes(file), e.message);
        return true;
      });
    }
  });

  test('a side file that is a symbolic link out of the folder is refused', async () => {
    const dir = path.join(tmp, 'ext-link', 'model');
    fs.mkdirSync(dir, { recursive: true });
    const outside = path.join(tmp, 'ext-link', 'secret.bin');
    writeExternal(dir, 'w.bin', outside);
    fs.symlinkSync(outside, path.join(dir, 'w.bin'));
    const file = path.join(dir, 'model.onnx');
    await assert.rejects(readModel(file), (e: unknown) => {
      assert.ok(e instanceof ModelError, String(e));
      assert.match(e.message, /tensor 'W'.*'w\.bin'.*outside the model's folder/);
      return true;
    });
    // A link that stays inside the folder is fine.
    fs.renameSync(outside, path.join(dir, 'real.bin'));
    fs.rmSync(path.join(dir, 'w.bin'));
    fs.symlinkSync('real.bin', path.join(dir, 'w.bin'));
    const m = await readModel(file);
    assert.deepStrictEqual(m.graph.initializers.get('W'), mlpGraph().initializers.get('W'));
  });

  test('without a folder (decodeModel of bytes alone) external data is refused', () => {
    const dir = path.join(tmp, 'ext-nofolder');
    const file = writeExternal(dir, 'w.bin', path.join(dir, 'w.bin'));
    assert.throws(
      () => decodeModel(fs.readFileSync(file), { source: 'mem' }),
      (e: unknown) =>
        e instanceof ModelError && /mem: tensor 'W' is stored in 'w\.bin'/.test(e.message),
    );
    const m = decodeModel(fs.readFileSync(file), { source: 'mem', baseDir: dir });
    assert.deepStrictEqual(m.graph.initializers.get('W'), mlpGraph().initializers.get('W'));
  });

  test('a missing side file, or a length past its end, names the tensor and the location', async () => {
    const dir = path.join(tmp, 'ext-missing');
    const file = writeExternal(dir, 'nope.bin');
    await assert.rejects(
      readModel(file),
      (e: unknown) => e instanceof ModelError && /tensor 'W'.*'nope\.bin'/.test(e.message),
    );
    fs.writeFileSync(path.join(dir, 'short.bin'), Buffer.alloc(16));
    const file2 = writeExternal(dir, 'short.bin');
    await assert.rejects(
      readModel(file2),
      (e: unknown) => e instanceof ModelError && /tensor 'W'.*past the end/.test(e.message),
    );
  });
});

describe('corrupt files', () => {
  /** Asserts readModel fails with a ModelError whose message names the file. */
  async function refused(file: string): Promise<void> {
    await assert.rejects(readModel(file), (e: unknown) => {
      assert.ok(e instanceof ModelError, `${file}: expected a ModelError, got ${String(e)}`);
      assert.ok(e.message.includes(file), e.message);
      return true;
    });
  }

  test('a truncated file (first half of a valid one) gives a ModelError naming it', async () => {
    const bytes = encodeModel(fullModel());
    const file = path.join(tmp, 'truncated.onnx');
    fs.writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
    await refused(file);
    // Every other cut point as well.
    for (let cut = 1; cut < bytes.length; cut += 7) {
      assert.throws(
        () => decodeModel(bytes.subarray(0, cut), { source: `cut-${cut}` }),
        (e: unknown) => e instanceof ModelError && e.message.includes(`cut-${cut}`),
      );
    }
  });

  test('an empty file, and a missing one, give a ModelError naming it', async () => {
    const file = path.join(tmp, 'empty.onnx');
    fs.writeFileSync(file, new Uint8Array());
    await refused(file);
    await refused(path.join(tmp, 'does-not-exist.onnx'));
  });

  test('seeded random bytes never give another error type', async () => {
    const rng = new Rng(2024);
    const file = path.join(tmp, 'random.onnx');
    fs.writeFileSync(
      file,
      Uint8Array.from({ length: 4096 }, () => rng.int(256)),
    );
    await refused(file);
    for (let k = 0; k < 300; k++) {
      const bytes = Uint8Array.from({ length: 1 + rng.int(512) }, () => rng.int(256));
      assert.throws(
        () => decodeModel(bytes, { source: `random-${k}` }),
        (e: unknown) => e instanceof ModelError && e.message.includes(`random-${k}`),
      );
    }
    // Random flips inside a valid file: either a valid model comes back or a ModelError.
    const good = encodeModel(fullModel());
    for (let k = 0; k < 300; k++) {
      const bytes = Uint8Array.from(good);
      for (let j = 0; j < 3; j++) bytes[rng.int(bytes.length)] = rng.int(256);
      try {
        decodeModel(bytes, { source: `flip-${k}` });
      } catch (e) {
        assert.ok(e instanceof ModelError, `flip-${k}: ${String(e)}`);
        assert.ok(e.message.includes(`flip-${k}`), e.message);
      }
    }
  });
});

describe('writeModel', () => {
  test('writes a file that reads back equal, leaving no temporary file', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'write-'));
    const file = path.join(dir, 'm.onnx');
    writeModel(file, fullModel());
    writeModel(file, makeModel(mlpGraph())); // overwrite
    assert.deepEqual(fs.readdirSync(dir), ['m.onnx']);
    assert.deepStrictEqual(await readModel(file), makeModel(mlpGraph()));
  });

  test('a missing folder fails naming the target, creating nothing', () => {
    const missing = path.join(tmp, 'no-such-dir');
    const file = path.join(missing, 'm.onnx');
    assert.throws(
      () => writeModel(file, fullModel()),
      (e: unknown) => e instanceof UsageError && e.message.includes(file),
    );
    assert.equal(fs.existsSync(missing), false);
  });

  test('a failed rename leaves the target untouched and no temporary file', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'write-fail-'));
    // The target is a non-empty folder: the final rename fails after the data was written.
    const target = path.join(dir, 'm.onnx');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep.txt'), 'keep');
    assert.throws(() => writeModel(target, fullModel()), UsageError);
    assert.deepEqual(fs.readdirSync(dir), ['m.onnx']);
    assert.equal(fs.readFileSync(path.join(target, 'keep.txt'), 'utf8'), 'keep');
  });
});
