// Fusion never changes a tensor another reader sees. torch.onnx.export merges equal
// initializers and routes the duplicates through Identity nodes (the zero biases and unit
// LayerNorm weights of an untrained model, tied weights); these graphs reproduce those
// patterns by hand and check the fused model against the unfused one run with denoising
// steps, the LayerNorm parameters untouched, the nodes unchanged, only copies added.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { readDenoisers, writeDenoisers } from '../../src/denoise/denoiser-file.js';
import { COPY_SUFFIX, fuseModel, fuseWithReport } from '../../src/denoise/fuse.js';
import { type ConversionPlan, initDenoisers, planConversion } from '../../src/denoise/plan.js';
import { traceRoute, valueAlong } from '../../src/denoise/routes.js';
import { surveyLayers } from '../../src/denoise/select.js';
import { compareTopology } from '../../src/denoise/verify.js';
import { GraphBuilder, type Value } from '../../src/onnx/builder.js';
import { type Graph, type Model, producers } from '../../src/onnx/ir.js';
import { decodeModel, encodeModel } from '../../src/onnx/serialize.js';
import { float32, type Tensor } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { ModelError, SharedTensorError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { assertFusionVerified, relErr } from './helpers.js';

/** Renames a value everywhere in a graph (to give Identity outputs exporter-style names). */
function rename(g: Graph, from: string, to: string): void {
  for (const n of g.nodes) {
    n.inputs = n.inputs.map((i) => (i === from ? to : i));
    n.outputs = n.outputs.map((o) => (o === from ? to : o));
  }
}

/** An Identity node whose output gets the given name, as torch.onnx's deduplication makes. */
function alias(b: GraphBuilder, v: Value, name: string, renames: [string, string][]): Value {
  const out = b.op1('Identity', [v]);
  renames.push([out.name, name]);
  return out;
}

function finish(b: GraphBuilder, renames: [string, string][]): Model {
  const { model } = b.build();
  for (const [from, to] of renames) rename(model.graph, from, to);
  return model;
}

/** Denoisers large enough that a fusion written through a shared tensor shows. */
function strong(plan: ConversionPlan): Map<string, Tensor> {
  const values = initDenoisers(plan, 7);
  const rng = new Rng(11);
  for (const t of values.values()) rng.fillNormal(t.data as Float32Array, 0, 1);
  for (const p of plan.layers) p.coeffs = { ...p.coeffs, c1: 0.3, c3: 1.2 };
  return values;
}

function input(dims: number[], seed = 1): Tensor {
  const n = dims.reduce((a, c) => a * c, 1);
  return float32(dims, new Rng(seed).fillNormal(new Float32Array(n)));
}

/** The tensor a node input sees (through Identity/Transpose nodes). */
function seen(g: Graph, value: string): Float32Array {
  const t = traceRoute(g, value, producers(g), true);
  assert.ok('route' in t, `${value} is not a stored tensor`);
  return valueAlong(g, t.route, t.route.path.length).data as Float32Array;
}

/** Same nodes (names, ops, outputs) in the same order; initializers only added, as copies. */
function sameNodesOnlyCopiesAdded(a: Model, b: Model): string[] {
  assert.deepEqual(
    b.graph.nodes.map((n) => [n.name, n.opType, n.outputs]),
    a.graph.nodes.map((n) => [n.name, n.opType, n.outputs]),
  );
  for (const [k, t] of a.graph.initializers) {
    const u = b.graph.initializers.get(k);
    assert.ok(u, `initializer ${k} was removed`);
    assert.deepEqual([u.dtype, u.dims], [t.dtype, t.dims]);
  }
  const added = [...b.graph.initializers.keys()].filter((k) => !a.graph.initializers.has(k));
  for (const k of added) assert.ok(k.includes(COPY_SUFFIX), `added initializer ${k} is no copy`);
  assert.deepEqual(compareTopology(a, b), []);
  return added;
}

/**
 * An untrained-transformer pattern: one zero tensor is the bias of two MatMul layers and
 * of two LayerNorms; one unit tensor is the scale of both LayerNorms and the bias of the
 * Gemm head (all merged by the exporter, each duplicate behind an Identity).
 */
function mergedZerosAndOnes(): Model {
  const b = new GraphBuilder({ seed: 3 });
  const r: [string, string][] = [];
  const x = b.input('input', 'float32', ['N', 4, 6]);
  const zeros = b.param('l1.bias', [6], { kind: 'zeros' });
  const ones = b.param('norm1.weight', [6], { kind: 'ones' });
  const w1 = b.param('onnx::MatMul_1', [6, 6], { kind: 'normal', std: 0.5 });
  const w2 = b.param('onnx::MatMul_2', [6, 6], { kind: 'normal', std: 0.5 });
  const hw = b.param('head.weight', [6, 6], { kind: 'normal', std: 0.5 });
  let h = b.layerNorm(x, ones, alias(b, zeros, 'norm1.bias', r));
  h = b.add(zeros, b.op1('MatMul', [h, w1], {}, '/l1/MatMul'));
  h = b.relu(h);
  h = b.add(b.op1('MatMul', [h, w2], {}, '/l2/MatMul'), alias(b, zeros, 'l2.bias', r));
  h = b.layerNorm(h, alias(b, ones, 'norm2.weight', r), alias(b, zeros, 'norm2.bias', r));
  h = b.reduceMean(h, [1], false);
  b.output(b.gemm(h, hw, alias(b, ones, 'head.bias', r), { transB: 1 }), 'logits');
  return finish(b, r);
}

/**
 * Tied weights: `enc` and `dec` share an anonymous pre-transposed weight (the second read
 * through an Identity), `proj_a` and `proj_b` read one initializer directly.
 */
function tiedModel(): Model {
  const b = new GraphBuilder({ seed: 4 });
  const r: [string, string][] = [];
  const x = b.input('input', 'float32', ['N', 4, 6]);
  const w = b.param('onnx::MatMul_7', [6, 6], { kind: 'normal', std: 0.5 });
  const pw = b.param('proj_a.weight', [6, 6], { kind: 'normal', std: 0.5 });
  const bias = (n: string) => b.param(n, [6], { kind: 'normal', std: 0.5 });
  let h = b.add(bias('enc.bias'), b.op1('MatMul', [x, w], {}, '/enc/MatMul'));
  h = b.tanh(h);
  const w8 = alias(b, w, 'onnx::MatMul_8', r);
  h = b.add(bias('dec.bias'), b.op1('MatMul', [h, w8], {}, '/dec/MatMul'));
  h = b.reduceMean(h, [1], false);
  h = b.tanh(b.op1('Gemm', [h, pw, bias('proj_a.bias')], { transB: 1 }, '/proj_a/Gemm'));
  h = b.op1('Gemm', [h, pw, bias('proj_b.bias')], { transB: 1 }, '/proj_b/Gemm');
  b.output(h, 'logits');
  return finish(b, r);
}

describe('shared biases and LayerNorm parameters', () => {
  test('layers get their own copies; the LayerNorms keep zero bias and unit scale', async () => {
    const model = mergedZerosAndOnes();
    const plan = planConversion(model.graph, { filter: 'all' });
    assert.deepEqual(
      plan.layers.map((p) => [p.layer.name, p.layer.bias]),
      [
        ['l1', 'l1.bias'],
        ['l2', 'l1.bias'], // its bias 'l2.bias' is an Identity of the merged zeros
        ['head', 'norm1.weight'],
      ],
    );
    assert.deepEqual(plan.skipped, []);
    const values = strong(plan);
    const { model: fused, report } = fuseWithReport(model, plan, values);
    await assertFusionVerified({
      original: model,
      fused,
      plan,
      values,
      inputs: { input: input([3, 4, 6]) },
      tolerance: 1e-5,
    });
    const added = sameNodesOnlyCopiesAdded(model, fused);
    assert.deepEqual(added.sort(), report.copies.map((c) => c.copy).sort());
    // l1 reads 'l1.bias' directly: it keeps it (fused), the Identities read a zero copy;
    // l2 then takes its own copy of that; head's bias (ones) is shared with both LNs.
    assert.deepEqual(
      report.copies.map((c) => [c.layer, c.role, c.of, c.reader, c.reason]),
      [
        ['l1', 'bias', 'l1.bias', 'others', 'shared'],
        ['l2', 'bias', `l1.bias${COPY_SUFFIX}`, 'layer', 'shared'],
        ['head', 'bias', 'norm1.weight', 'layer', 'shared'],
      ],
    );
    assert.equal(report.addedParameters, 18);
    assert.equal(report.untiedParameters, 0);
    // What every LayerNorm reads is exactly what it read before.
    for (const n of fused.graph.nodes.filter((k) => k.opType === 'LayerNormalization')) {
      assert.deepEqual([...seen(fused.graph, n.inputs[1]!)], new Array(6).fill(1));
      assert.deepEqual([...seen(fused.graph, n.inputs[2]!)], new Array(6).fill(0));
    }
    // The fused biases are really fused (not zero / one any more).
    const l1 = fused.graph.nodes.find((n) => n.inputs.includes('/l1/MatMul_out0'))!;
    assert.ok(seen(fused.graph, l1.inputs[0]!).some((v) => Math.abs(v) > 1e-3));
  });

  test('the fused model round-trips through .onnx and runs in ONNX Runtime as verified', async () => {
    const model = mergedZerosAndOnes();
    const plan = planConversion(model.graph, { filter: 'all' });
    const values = strong(plan);
    const fused = fuseModel(model, plan, values);
    const back = decodeModel(encodeModel(fused), { source: 'fused.onnx' });
    const x = { input: input([2, 4, 6], 5) };
    const run = async (m: Model) => {
      const s = await Session.create(m, { threads: 1 });
      const y = (await s.run(x)).logits!.data as Float32Array;
      await s.release();
      return y;
    };
    const [a, c, o] = [await run(fused), await run(back), await run(model)];
    assert.deepEqual([...c], [...a]);
    assert.ok(relErr(a, o) > 1e-2, 'the denoisers changed nothing');
  });

  test('before this fix the same fusion in place changed the LayerNorms (the bug it fixes)', async () => {
    // Writing the fused bias into the merged zero tensor, as fusion used to, breaks the
    // equality with the unfused model: the check above would catch a regression.
    const model = mergedZerosAndOnes();
    const plan = planConversion(model.graph, { filter: 'l1' });
    const values = strong(plan);
    const fused = fuseModel(model, plan, values);
    const inPlace: Model = {
      ...model,
      graph: { ...model.graph, initializers: new Map(model.graph.initializers) },
    };
    inPlace.graph.initializers.set('l1.bias', fused.graph.initializers.get('l1.bias')!);
    inPlace.graph.initializers.set(
      'onnx::MatMul_1',
      fused.graph.initializers.get('onnx::MatMul_1')!,
    );
    const x = { input: input([2, 4, 6], 6) };
    const run = async (m: Model) => {
      const s = await Session.create(m, { threads: 1 });
      const y = (await s.run(x)).logits!.data as Float32Array;
      await s.release();
      return y;
    };
    assert.ok(relErr(await run(inPlace), await run(fused)) > 1e-3);
  });
});

describe('tied weights', () => {
  test('skipped by default, each with the layer it is tied to', () => {
    const model = tiedModel();
    const { layers, skipped } = surveyLayers(model.graph);
    assert.deepEqual(layers, []);
    assert.deepEqual(
      skipped.map((s) => [s.name, s.code]),
      [
        ['enc', 'tied'],
        ['dec', 'tied'],
        ['proj_a', 'tied'],
        ['proj_b', 'tied'],
      ],
    );
    assert.match(skipped[1]!.reason, /also the weight of 'enc'.*--untie.*\+36 parameters/);
    assert.throws(
      () => planConversion(model.graph, { filter: 'all' }),
      /no selectable layer: all 4 candidates are skipped; skipped: enc: .*--untie/,
    );
  });

  test('--untie: fused into copies, equal to the unfused model, reported as added parameters', async () => {
    const model = tiedModel();
    const plan = planConversion(model.graph, { filter: 'all', untie: true });
    assert.deepEqual(
      plan.layers.map((p) => [p.layer.name, p.layer.tiedWith]),
      [
        ['enc', ['dec']],
        ['dec', ['enc']],
        ['proj_a', ['proj_b']],
        ['proj_b', ['proj_a']],
      ],
    );
    const values = strong(plan);
    const { model: fused, report } = fuseWithReport(model, plan, values);
    await assertFusionVerified({
      original: model,
      fused,
      plan,
      values,
      inputs: { input: input([3, 4, 6]) },
      tolerance: 1e-5,
    });
    sameNodesOnlyCopiesAdded(model, fused);
    // One copy per tied pair: the second layer then owns the original.
    assert.deepEqual(
      report.copies.map((c) => [c.layer, c.of, c.reader, c.reason]),
      [
        ['enc', 'onnx::MatMul_7', 'layer', 'tied'],
        ['proj_a', 'proj_a.weight', 'others', 'tied'],
      ],
    );
    assert.equal(report.untiedParameters, 72);
    // The two halves of each pair now differ.
    const g = fused.graph;
    const node = (n: string) => g.nodes.find((k) => k.name === n)!;
    assert.ok(
      relErr(seen(g, node('/enc/MatMul').inputs[1]!), seen(g, node('/dec/MatMul').inputs[1]!)) >
        1e-3,
    );
    assert.ok(
      relErr(seen(g, node('/proj_a/Gemm').inputs[1]!), seen(g, node('/proj_b/Gemm').inputs[1]!)) >
        1e-3,
    );
  });

  test('fuseModel refuses to write a tied weight without untie (SharedTensorError)', () => {
    const model = tiedModel();
    const plan = planConversion(model.graph, { filter: 'dec,proj_b', untie: true });
    const values = strong(plan);
    plan.untie = false;
    assert.throws(
      () => fuseModel(model, plan, values),
      (err: unknown) =>
        err instanceof SharedTensorError &&
        err instanceof ModelError &&
        err.layer === 'dec' &&
        err.readers.includes('/enc/MatMul') &&
        /tied/.test(err.message),
    );
    // The option overrides the plan.
    const fused = fuseModel(model, plan, values, { untie: true });
    // enc, not in the plan, still reads the original weight.
    const enc = fused.graph.nodes.find((n) => n.name === '/enc/MatMul')!;
    assert.deepEqual(
      [...seen(fused.graph, enc.inputs[1]!)],
      [...(model.graph.initializers.get('onnx::MatMul_7')!.data as Float32Array)],
    );
  });

  test('a weight shared with a layer that is skipped anyway is tied too', async () => {
    // B (alpha = 2) is not convertible, but it reads A's weight: fusing A in place would
    // change B; A is tied, skipped by default and fused into a copy with untie.
    const b = new GraphBuilder({ seed: 8 });
    const x = b.input('input', 'float32', ['N', 6]);
    const w = b.param('a.weight', [6, 6], { kind: 'normal', std: 0.5 });
    const h = b.tanh(
      b.gemm(x, w, b.param('a.bias', [6], { kind: 'normal', std: 0.5 }), { transB: 1 }),
    );
    b.output(b.gemm(h, w, null, { transB: 1, alpha: 2 }), 'y');
    const model = b.build().model;
    const { layers, skipped } = surveyLayers(model.graph);
    assert.deepEqual(layers, []);
    assert.deepEqual(
      skipped.map((k) => k.code),
      ['tied', 'gemm-attributes'],
    );
    const plan = planConversion(model.graph, { filter: 'all', untie: true });
    assert.deepEqual(
      plan.layers.map((p) => p.layer.tiedWith),
      [[skipped[1]!.name]],
    );
    const values = strong(plan);
    const { model: fused, report } = fuseWithReport(model, plan, values);
    assert.equal(report.untiedParameters, 36);
    await assertFusionVerified({
      original: model,
      fused,
      plan,
      values,
      inputs: { input: input([4, 6]) },
      tolerance: 1e-5,
    });
  });

  test('a denoiser file keeps untie, so fuse and verify rebuild the same plan', () => {
    const model = tiedModel();
    const plan = planConversion(model.graph, { filter: 'all', untie: true });
    const dir = mkdtempSync(join(tmpdir(), 'denoiserep-untie-'));
    try {
      const file = join(dir, 'd.safetensors');
      writeDenoisers(file, plan, 'all', strong(plan));
      const back = readDenoisers(file, model.graph, 'tied');
      assert.equal(back.plan.untie, true);
      assert.deepEqual(
        back.plan.layers.map((p) => p.layer.name),
        ['enc', 'dec', 'proj_a', 'proj_b'],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('equal parameters the exporter merged under their own names are not tied', async () => {
    const b = new GraphBuilder({ seed: 5 });
    const r: [string, string][] = [];
    const x = b.input('input', 'float32', ['N', 6]);
    const w = b.param('a.weight', [6, 6], { kind: 'normal', std: 0.5 });
    const h = b.tanh(b.gemm(x, w, b.param('a.bias', [6], { kind: 'zeros' }), { transB: 1 }));
    const wb = alias(b, w, 'b.weight', r);
    b.output(b.gemm(h, wb, b.param('b.bias', [6], { kind: 'ones' }), { transB: 1 }), 'y');
    const model = finish(b, r);
    const plan = planConversion(model.graph, { filter: 'all' });
    assert.deepEqual(
      plan.layers.map((p) => p.layer.name),
      ['a', 'b'],
    );
    const values = strong(plan);
    const { model: fused, report } = fuseWithReport(model, plan, values);
    await assertFusionVerified({
      original: model,
      fused,
      plan,
      values,
      inputs: { input: input([5, 6]) },
      tolerance: 1e-5,
    });
    assert.deepEqual(
      report.copies.map((c) => [c.layer, c.role, c.reason]),
      [['a', 'weight', 'shared']],
    );
    assert.equal(report.untiedParameters, 0);
  });
});

describe('other sharing', () => {
  test('a weight another op reads after a Transpose: the copy holds the transposed value', async () => {
    const b = new GraphBuilder({ seed: 6 });
    const x = b.input('input', 'float32', ['N', 5]);
    const w = b.param('fc.weight', [6, 5], { kind: 'normal', std: 0.5 });
    const wt = b.transpose(w, [1, 0]);
    const y = b.add(b.matmul(x, wt), b.param('fc.bias', [6], { kind: 'normal', std: 0.5 }));
    b.output(y, 'y');
    b.output(b.reduceSum(wt, [0], false), 'colsum');
    const model = b.build().model;
    const plan = planConversion(model.graph, { filter: 'all' });
    const values = strong(plan);
    const { model: fused, report } = fuseWithReport(model, plan, values);
    await assertFusionVerified({
      original: model,
      fused,
      plan,
      values,
      inputs: { input: input([4, 5]) },
      tolerance: 1e-5,
    });
    assert.equal(report.copies.length, 1);
    assert.equal(report.copies[0]!.of, wt.name);
    assert.deepEqual(fused.graph.initializers.get(report.copies[0]!.copy)!.dims, [5, 6]);
    const s0 = await Session.create(model, { threads: 1 });
    const s1 = await Session.create(fused, { threads: 1 });
    const feeds = { input: input([1, 5]) };
    assert.deepEqual(
      [...(await s1.run(feeds)).colsum!.data],
      [...(await s0.run(feeds)).colsum!.data],
    );
    await s0.release();
    await s1.release();
  });

  test('a plan made for another model is refused with the layer named', () => {
    const a = mergedZerosAndOnes();
    const other = mergedZerosAndOnes();
    rename(other.graph, 'onnx::MatMul_1', 'onnx::MatMul_99');
    other.graph.initializers.set(
      'onnx::MatMul_99',
      other.graph.initializers.get('onnx::MatMul_1')!,
    );
    other.graph.initializers.delete('onnx::MatMul_1');
    const plan = planConversion(a.graph, { filter: 'all' });
    assert.throws(
      () => fuseModel(other, plan, strong(plan)),
      /layer 'l1': .*'onnx::MatMul_1'.* (missing|in this model)/,
    );
  });

  test('skipped candidates carry their reasons: depthwise, grouped, dynamic weight, Gemm attributes', () => {
    const b = new GraphBuilder({ seed: 7 });
    const x = b.input('input', 'float32', ['N', 4, 5, 5]);
    const dw = b.param('dw.weight', [4, 1, 3, 3], { kind: 'normal', std: 0.5 });
    const gw = b.param('g.weight', [4, 2, 1, 1], { kind: 'normal', std: 0.5 });
    let h = b.conv(x, dw, null, { group: 4, pads: [1, 1, 1, 1] });
    h = b.conv(h, gw, null, { group: 2 });
    const t = b.reshape(h, [-1, 4, 25]);
    const att = b.matmul(t, b.transpose(t, [0, 2, 1])); // activation x activation
    const f = b.reshape(att, [-1, 16]);
    const hw = b.param('head.weight', [3, 16], { kind: 'normal', std: 0.5 });
    b.output(b.gemm(f, hw, null, { transB: 1, alpha: 2 }), 'y');
    const { skipped } = surveyLayers(b.build().model.graph);
    assert.deepEqual(
      skipped.map((s) => [s.name, s.op, s.code]),
      [
        ['dw', 'Conv', 'depthwise-conv'],
        ['g', 'Conv', 'grouped-conv'],
        [skipped[2]!.node, 'MatMul', 'dynamic-weight'],
        ['head', 'Gemm', 'gemm-attributes'],
      ],
    );
    assert.match(skipped[2]!.reason, /output of Reshape node/);
  });
});
