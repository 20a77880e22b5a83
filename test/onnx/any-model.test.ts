// Models this project did not build (test/fixtures/onnx/, written by the onnx Python
// package; scripts/onnx-fixtures.py): every ai.onnx opset from 11 to 21 in its own
// operator forms, MobileNetV3-style ops (HardSwish, HardSigmoid, Resize, Einsum), a
// contrib op and a model-local function. Inferred shapes are checked against the shapes
// ONNX Runtime actually produces; functions and contrib ops survive a round trip.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { planConversion } from '../../src/denoise/plan.js';
import { countFlops } from '../../src/eval/flops.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { type Dim, MAX_OPSET, MIN_OPSET, type Model, onnxOpset } from '../../src/onnx/ir.js';
import { decodeModel, encodeModel, readModel } from '../../src/onnx/serialize.js';
import { inferShapes, inferShapesDetailed } from '../../src/onnx/shapes.js';
import { float32, type Tensor } from '../../src/onnx/tensor.js';
import { measureShapes } from '../../src/runtime/measure-shapes.js';
import { Session, withExtraOutputs } from '../../src/runtime/session.js';
import { ModelError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx');

/** A seeded float32 batch for the model's single image input, symbolic dims set to `n`. */
function feed(model: Model, n: number): Record<string, Tensor> {
  const x = model.graph.inputs[0]!;
  const dims = x.shape!.map((d) => (typeof d === 'number' ? d : n));
  const data = new Rng(7).fillNormal(new Float32Array(dims.reduce((a, b) => a * b, 1)));
  return { [x.name]: float32(dims, data) };
}

/** A dim evaluated with the batch symbol `N` bound to `n` (products like `N*4` included). */
function evalDim(d: Dim, n: number): number | null {
  if (typeof d === 'number' || d === null) return d;
  return d.split('*').reduce((a, f) => a * (f === 'N' ? n : Number(f)), 1);
}

/**
 * Runs the model in ONNX Runtime with every node output fetched, and asserts that each
 * inferred shape matches the actual one (unknown dims excepted); returns how many values
 * were compared.
 */
async function assertShapesMatchOrt(model: Model, n = 2): Promise<number> {
  const types = inferShapes(model.graph, onnxOpset(model));
  const names = model.graph.nodes.flatMap((nd) => nd.outputs).filter((o) => o !== '');
  const s = await Session.create(withExtraOutputs(model, names), { threads: 1 });
  try {
    const out = await s.run(feed(model, n), names);
    for (const name of names) {
      const t = types.get(name);
      assert.ok(t?.shape, `'${name}' has an inferred shape`);
      const want = t.shape.map((d) => evalDim(d, n));
      const got = out[name]!.dims;
      assert.equal(got.length, want.length, `rank of '${name}'`);
      want.forEach((d, k) => {
        if (d !== null) assert.equal(got[k], d, `dim ${k} of '${name}': [${t.shape}] vs [${got}]`);
      });
      assert.equal(out[name]!.dtype, t.dtype, `dtype of '${name}'`);
    }
  } finally {
    await s.release();
  }
  return names.length;
}

describe(`ai.onnx opsets ${MIN_OPSET} to ${MAX_OPSET}`, () => {
  for (let v = MIN_OPSET; v <= MAX_OPSET; v++) {
    test(`opset ${v}: every value inferred, equal to ONNX Runtime's shapes; layers selected`, async () => {
      const m = await readModel(join(fixtures, `opset${v}.onnx`));
      assert.equal(onnxOpset(m), v);
      const { unknown } = inferShapesDetailed(m.graph, v);
      assert.deepEqual(unknown, [], 'no value left unknown');
      assert.equal(await assertShapesMatchOrt(m), m.graph.nodes.length + 1); // Split has 2
      const plan = planConversion(m.graph, { source: `opset${v}.onnx` });
      assert.deepEqual(
        plan.layers.map((l) => l.layer.name),
        ['conv1', 'conv2', 'head'],
      );
    });
  }

  test('opsets outside the range, and a second ai.onnx import, are refused naming the range', () => {
    const bytes = encodeModel(decodeOpset(17));
    for (const v of [1, 9, 10, 22, 99]) {
      const m = decodeOpset(17);
      m.opsetImports = [{ domain: '', version: v }];
      assert.throws(
        () => decodeModel(encodeModel(m), { source: `v${v}.onnx` }),
        (e: unknown) =>
          e instanceof ModelError &&
          e.message.startsWith(`v${v}.onnx: ai.onnx opset ${v} is not supported`) &&
          e.message.includes(`(supported: ${MIN_OPSET} to ${MAX_OPSET})`),
      );
    }
    const twice = decodeOpset(17);
    twice.opsetImports.push({ domain: 'ai.onnx', version: 13 });
    assert.throws(
      () => decodeModel(encodeModel(twice), { source: 't.onnx' }),
      /t\.onnx: opset of domain 'ai\.onnx' is imported twice/,
    );
    // The range's ends are accepted.
    assert.equal(onnxOpset(decodeModel(bytes, { source: 'ok.onnx' })), 17);
  });
});

/** The opset-17 fixture, decoded in memory (for variations of its opset imports). */
function decodeOpset(v: 17): Model {
  return decodeModel(readFileSync(join(fixtures, `opset${v}.onnx`)), { source: 'x' });
}

describe('MobileNetV3-style ops: HardSwish, HardSigmoid, depthwise conv, Resize, Einsum', () => {
  test('shape inference covers every op and agrees with ONNX Runtime; FLOPs and layers follow', async () => {
    const m = await readModel(join(fixtures, 'mobile-ops.onnx'));
    assert.deepEqual(inferShapesDetailed(m.graph, onnxOpset(m)).unknown, []);
    await assertShapesMatchOrt(m, 3);
    const types = inferShapes(m.graph, onnxOpset(m));
    // Resize doubles H and W; the Einsum projects 8 channels to 6.
    assert.deepEqual(types.get('u')!.shape, ['N', 8, 16, 16]);
    assert.deepEqual(types.get('q')!.shape, ['N', 6, 16, 16]);
    // Stem conv: 2·(3·3·3)·8·8·8 per image = 27,648 FLOPs; dw conv 2·9·8·64 = 9,216.
    const flops = new Map(countFlops(m).byNode.map((f) => [f.name, f.flops]));
    assert.equal(flops.get('/stem/Conv'), 27648);
    assert.equal(flops.get('/dw/Conv'), 9216);
    const plan = planConversion(m.graph, {});
    assert.ok(plan.layers.some((l) => l.layer.name === 'head'));
  });
});

describe('contrib ops and model-local functions', () => {
  test('values after them are left unknown (not an error), with the node where inference stopped', async () => {
    const m = await readModel(join(fixtures, 'contrib-function.onnx'));
    const { values, unknown } = inferShapesDetailed(m.graph, onnxOpset(m));
    assert.deepEqual(
      unknown.map((u) => [u.value, u.node.name]),
      [
        ['g', '/act/FastGelu'],
        ['s', '/act/FastGelu'],
        ['p', '/act/FastGelu'],
        ['f', '/act/FastGelu'],
        ['h', '/act/FastGelu'],
        ['r', '/act/FastGelu'],
      ],
    );
    // The declared graph output stands in for the last Gemm's result.
    assert.deepEqual(values.get('y')!.shape, ['N', 4]);
    // Strict mode (for graphs that must be differentiated) still names the op.
    assert.throws(
      () => inferShapes(m.graph, 17, { unknownOps: 'error' }),
      /node '\/act\/FastGelu' \(FastGelu\): no shape inference for op 'com\.microsoft\.FastGelu'/,
    );
    // A builder over the graph says why a value has no type, and what to do.
    const b = new GraphBuilder({ graph: m.graph, opset: 17 });
    assert.throws(
      () => b.value('f'),
      /the type of 'f' is unknown: it comes after node '\/act\/FastGelu' \(com\.microsoft\.FastGelu\).*measureShapes/,
    );
  });

  test('measureShapes takes their shapes from ONNX Runtime, symbolic in the batch', async () => {
    const m = await readModel(join(fixtures, 'contrib-function.onnx'));
    const r = await measureShapes(m, { source: 'cf.onnx' });
    assert.deepEqual(r.measured, ['g', 's']);
    assert.deepEqual(r.model.graph.valueInfo.get('g')!.shape, ['N', 8, 8, 8]);
    assert.deepEqual(r.model.graph.valueInfo.get('s')!.shape, ['N', 8, 8, 8]);
    const { values, unknown } = inferShapesDetailed(r.model.graph, 17);
    assert.deepEqual(unknown, []);
    assert.deepEqual(values.get('f')!.shape, ['N', 8]);
    // The shapes now hold for any batch, as ONNX Runtime runs it.
    await assertShapesMatchOrt(r.model, 3);
    // The input model is left as it was; a fully typed model is returned as is.
    assert.equal(m.graph.valueInfo.size, 0);
    const again = await measureShapes(r.model);
    assert.equal(again.model, r.model);
    assert.deepEqual(again.measured, []);
    // Layers after the contrib op are selectable, with their sizes from the weights.
    const plan = planConversion(r.model.graph, {});
    assert.deepEqual(
      plan.layers.map((l) => [l.layer.name, l.layer.inFeatures, l.layer.outFeatures]),
      [
        ['stem', 3, 8],
        ['fc1', 8, 8],
        ['head', 8, 4],
      ],
    );
  });

  test('a probe whose declared input passes the limit is refused naming the op', async () => {
    const m = await readModel(join(fixtures, 'contrib-function.onnx'));
    await assert.rejects(
      measureShapes(m, { source: 'cf.onnx', maxInputBytes: 100 }),
      /cf\.onnx: node '\/act\/FastGelu' \(com\.microsoft\.FastGelu\) has no shape rule, and measuring .* input at batch 1/,
    );
  });

  test('functions and contrib nodes survive a round trip byte for byte, and run the same', async () => {
    const path = join(fixtures, 'contrib-function.onnx');
    const m = await readModel(path);
    assert.equal(m.functions?.length, 1);
    const bytes = encodeModel(m);
    const back = decodeModel(bytes, { source: 'back.onnx' });
    assert.deepEqual(back.functions, m.functions);
    assert.deepEqual(encodeModel(back), bytes);
    const node = back.graph.nodes.find((n) => n.opType === 'FastGelu')!;
    assert.equal(node.domain, 'com.microsoft');
    assert.deepEqual(
      back.opsetImports.map((o) => o.domain),
      ['', 'com.microsoft', 'custom'],
    );
    // The function's bytes are the file's own: FunctionProto 'Swish' of domain 'custom'.
    const text = new TextDecoder().decode(m.functions[0]);
    assert.ok(text.includes('Swish') && text.includes('custom'));
    // ORT runs the original file and the rewritten model to the same outputs.
    const x = feed(m, 2);
    const a = await Session.create(m, { threads: 1 });
    const b = await Session.create(back, { threads: 1 });
    const ya = (await a.run(x)).y!;
    const yb = (await b.run(x)).y!;
    await a.release();
    await b.release();
    assert.deepEqual(yb, ya);
  });
});
