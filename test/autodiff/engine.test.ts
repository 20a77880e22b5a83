// The autodiff engine itself: accumulation at shared values, broadcast undoing, reachability,
// errors, lifting initializers to inputs, extra outputs, and the ops the backward graph uses.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGradientGraph, gradName } from '../../src/autodiff/engine.js';
import { differentiableOps, nonDifferentiableOps } from '../../src/autodiff/registry.js';
import { GradientError, ModelError } from '../../src/util/errors.js';
import { GraphBuilder, type Value } from '../../src/onnx/builder.js';
import type { Model } from '../../src/onnx/ir.js';
import { knownShapeOps } from '../../src/onnx/shapes.js';
import { makeTensor, type Tensor } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';

const f64 = (dims: number[], values: number[]) => makeTensor('float64', dims, values);

/** Σ y (a scalar) as the loss. */
function sumLoss(b: GraphBuilder, y: Value): Value {
  return b.output(b.op1('ReduceSum', [y], { keepdims: 0 }), 'loss');
}

/** Σ y ⊙ W for a constant W of y's (static) shape. */
function weightedLoss(b: GraphBuilder, y: Value, w: number[]): Value {
  const wt = b.constant(makeTensor(y.dtype, y.shape as number[], w), 'W');
  return sumLoss(b, b.mul(y, wt));
}

async function run(model: Model, feeds: Record<string, Tensor>): Promise<Record<string, number[]>> {
  const s = await Session.create(model, { threads: 1 });
  const out = await s.run(feeds);
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data, Number)]));
}

describe('autodiff engine', () => {
  test('gradients meeting at one value add up: y = x·x + x·w', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float64', [3]);
    const w = b.input('w', 'float64', [3]);
    sumLoss(b, b.add(b.mul(x, x), b.mul(x, w)));
    const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x', 'w'] });
    // x gets three contributions (both inputs of x·x, and x·w) summed by one Sum node.
    const sums = g.model.graph.nodes.filter((n) => n.opType === 'Sum');
    assert.equal(sums.length, 1);
    assert.equal(sums[0]!.inputs.length, 3);
    const out = await run(g.model, { x: f64([3], [1, -2, 0.5]), w: f64([3], [3, 4, -1]) });
    // loss = Σ x² + x w: dx = 2x + w, dw = x.
    assert.deepEqual(out[g.gradOutputs.x!], [5, 0, 0]);
    assert.deepEqual(out[g.gradOutputs.w!], [1, -2, 0.5]);
    assert.deepEqual(out.loss, [1 + 4 + 0.25 + 3 - 8 - 0.5]);
  });

  test('broadcasting is undone by exact sums: a[2,3] + b[3] + c[2,1] + s[]', async () => {
    const b = new GraphBuilder();
    const a = b.input('a', 'float64', [2, 3]);
    const bb = b.input('b', 'float64', [3]);
    const c = b.input('c', 'float64', [2, 1]);
    const s = b.input('s', 'float64', []);
    const y = b.add(b.add(b.add(a, bb), c), s);
    weightedLoss(b, y, [1, 2, 3, 10, 20, 30]);
    const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['a', 'b', 'c', 's'] });
    const out = await run(g.model, {
      a: f64([2, 3], [0, 0, 0, 0, 0, 0]),
      b: f64([3], [0, 0, 0]),
      c: f64([2, 1], [0, 0]),
      s: f64([], [0]),
    });
    assert.deepEqual(out[g.gradOutputs.a!], [1, 2, 3, 10, 20, 30]);
    assert.deepEqual(out[g.gradOutputs.b!], [11, 22, 33]);
    assert.deepEqual(out[g.gradOutputs.c!], [6, 60]);
    assert.deepEqual(out[g.gradOutputs.s!], [66]);
    const shapes = Object.fromEntries(g.model.graph.outputs.map((o) => [o.name, o.shape]));
    assert.deepEqual(shapes[g.gradOutputs.b!], [3]);
    assert.deepEqual(shapes[g.gradOutputs.c!], [2, 1]);
    assert.deepEqual(shapes[g.gradOutputs.s!], []);
  });

  test('broadcasting against a symbolic batch: b[1,3] + a[N,3], on both sides of a Mul', async () => {
    const b = new GraphBuilder();
    const a = b.input('a', 'float64', ['N', 3]);
    const bias = b.input('b', 'float64', [1, 3]);
    const k = b.input('k', 'float64', [1]);
    sumLoss(b, b.mul(b.add(a, bias), k));
    const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['a', 'b', 'k'] });
    const out = await run(g.model, {
      a: f64([4, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
      b: f64([1, 3], [1, 1, 1]),
      k: f64([1], [2]),
    });
    assert.deepEqual(out[g.gradOutputs.a!], new Array(12).fill(2));
    assert.deepEqual(out[g.gradOutputs.b!], [8, 8, 8]);
    // dk = Σ (a + b) = 78 + 12.
    assert.deepEqual(out[g.gradOutputs.k!], [90]);
  });

  test('a parameter off the loss path is unreachable and gets zeros of its shape', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const w = b.param('w', [2], { kind: 'ones' });
    const unused = b.param('unused', [2, 2], { kind: 'ones' });
    const side = b.param('side', [3], { kind: 'ones' });
    // `unused` feeds a value the loss ignores; `side` reaches the loss only through Size,
    // which carries no gradient.
    b.output(b.mul(unused, unused), 'other');
    const n = b.op1('Cast', [b.op1('Size', [side])], { to: 1 });
    sumLoss(b, b.mul(b.mul(x, w), n));
    const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['w', 'unused', 'side'] });
    assert.deepEqual(g.unreachable, ['unused', 'side']);
    const out = await run(g.model, {
      x: makeTensor('float32', [2], [1, 2]),
      w: makeTensor('float32', [2], [5, 5]),
      unused: makeTensor('float32', [2, 2], [7, 7, 7, 7]),
      side: makeTensor('float32', [3], [9, 9, 9]),
    });
    assert.deepEqual(out[g.gradOutputs.w!], [3, 6]);
    assert.deepEqual(out[g.gradOutputs.unused!], [0, 0, 0, 0]);
    assert.deepEqual(out[g.gradOutputs.side!], [0, 0, 0]);
    assert.equal(out.other, undefined, 'forward outputs are dropped unless asked for');
  });

  test('only the parameter-to-loss path is differentiated', () => {
    // A rule-less op on a constant branch, and one on a branch the loss ignores, are fine.
    const op = ruleLessOp();
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 2]);
    const k = b.input('k', 'float32', [2, 2]);
    b.output(b.op1(op, [x]), 'ignored');
    sumLoss(b, b.mul(x, b.op1(op, [k])));
    const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] });
    assert.deepEqual(g.unreachable, []);
  });

  test('a loss that is not a scalar, or not a float, is a GradientError', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    b.output(b.op1('ReduceSum', [x, b.ints([1])], { keepdims: 0 }), 'per_row');
    b.output(b.op1('Shape', [x]), 'shape');
    b.output(b.op1('ReduceSum', [x], { keepdims: 1 }), 'one');
    const model = b.build().model;
    assert.throws(
      () => buildGradientGraph(model, { loss: 'per_row', wrt: ['x'] }),
      (e: unknown) => e instanceof GradientError && /must be a scalar/.test(e.message),
    );
    assert.throws(
      () => buildGradientGraph(model, { loss: 'shape', wrt: ['x'] }),
      (e: unknown) => e instanceof GradientError && /not a float/.test(e.message),
    );
    // A one-element tensor of shape [1, 1] is accepted.
    assert.equal(buildGradientGraph(model, { loss: 'one', wrt: ['x'] }).unreachable.length, 0);
    // A loss whose rank shape inference cannot know is refused rather than guessed.
    const u = new GraphBuilder();
    const ux = u.input('x', 'float32', [2]);
    const shape = u.input('s', 'int64', [null]);
    u.output(u.op1('Reshape', [ux, shape]), 'loss');
    assert.throws(
      () => buildGradientGraph(u.build().model, { loss: 'loss', wrt: ['x'] }),
      (e: unknown) => e instanceof GradientError && /rank is unknown/.test(e.message),
    );
  });

  test('a parameter listed twice gets one gradient output', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    sumLoss(b, b.mul(x, x));
    const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x', 'x'] });
    assert.deepEqual(
      g.model.graph.outputs.map((o) => o.name),
      ['loss', gradName('x')],
    );
  });

  test('an op without a gradient rule on the path names the op and node exactly', () => {
    const op = ruleLessOp();
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 2]);
    sumLoss(b, b.op1(op, [x], {}, 'the_node'));
    assert.throws(
      () => buildGradientGraph(b.build().model, { loss: 'loss', wrt: ['x'] }),
      (e: unknown) =>
        e instanceof GradientError && e.message === `no gradient rule for ${op} (node the_node)`,
    );
  });

  test('initializers in wrt are lifted to graph inputs (or as listed)', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const w = b.param('w', [2], { kind: 'constant', value: 3 });
    const k = b.param('k', [2], { kind: 'constant', value: 2 });
    sumLoss(b, b.mul(b.mul(x, w), k));
    const model = b.build().model;

    const lifted = buildGradientGraph(model, { loss: 'loss', wrt: ['w'] });
    const inputs = lifted.model.graph.inputs.map((i) => [i.name, i.dtype, i.shape]);
    assert.deepEqual(inputs, [
      ['x', 'float32', [2]],
      ['w', 'float32', [2]],
    ]);
    assert.ok(!lifted.model.graph.initializers.has('w'));
    assert.ok(lifted.model.graph.initializers.has('k'), 'k is not differentiated: stays');
    assert.ok(model.graph.initializers.has('w'), 'the forward model is not modified');
    // The fed value is used, not the initial 3.
    const out = await run(lifted.model, {
      x: makeTensor('float32', [2], [1, 2]),
      w: makeTensor('float32', [2], [10, 10]),
    });
    assert.deepEqual(out.loss, [60]);
    assert.deepEqual(out[lifted.gradOutputs.w!], [2, 4]);

    const kept = buildGradientGraph(model, { loss: 'loss', wrt: ['w'], liftToInputs: [] });
    assert.deepEqual(
      kept.model.graph.inputs.map((i) => i.name),
      ['x'],
    );
    const both = buildGradientGraph(model, { loss: 'loss', wrt: ['w'], liftToInputs: ['w', 'k'] });
    assert.deepEqual(
      both.model.graph.inputs.map((i) => i.name),
      ['x', 'w', 'k'],
    );
    assert.throws(
      () => buildGradientGraph(model, { loss: 'loss', wrt: ['w'], liftToInputs: ['x'] }),
      ModelError,
    );
  });

  test('outputs: loss first, one gradient per parameter, then the extra outputs', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const w = b.param('w', [2], { kind: 'constant', value: 2 });
    const h = b.mul(x, w);
    sumLoss(b, b.mul(h, h));
    const g = buildGradientGraph(b.build().model, {
      loss: 'loss',
      wrt: ['w'],
      extraOutputs: [h.name, 'loss', h.name],
    });
    assert.deepEqual(
      g.model.graph.outputs.map((o) => o.name),
      ['loss', gradName('w'), h.name],
    );
    assert.equal(g.gradOutputs.w, gradName('w'));
    const out = await run(g.model, {
      x: makeTensor('float32', [2], [1, 3]),
      w: makeTensor('float32', [2], [2, 2]),
    });
    assert.deepEqual(out[h.name], [2, 6]);
    // loss = Σ (x w)²: dw = 2 x² w.
    assert.deepEqual(out[gradName('w')], [4, 36]);
  });

  test('the backward graph uses only ai.onnx ops at the forward opset, and runs', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 6]);
    const w = b.param('w', [4, 6], { kind: 'uniform', bound: 0.5 });
    const bias = b.param('b', [4], { kind: 'zeros' });
    const table = b.param('table', [5, 4], { kind: 'uniform', bound: 0.5 });
    const ids = b.input('ids', 'int64', ['N']);
    let h = b.relu(b.gemm(x, w, bias, { transB: 1 }));
    h = b.add(h, b.gather(table, ids, 0));
    h = b.concat([b.slice(h, [1], [4], [1]), b.op1('Tile', [h, b.ints([1, 2])])], 1);
    h = b.op1('Pad', [b.transpose(b.unsqueeze(h, [0]), [1, 0, 2]), b.ints([0, 0, 1, 0, 0, 0])]);
    sumLoss(b, b.softmax(b.flatten(h, 1)));
    const { model } = b.build();
    const g = buildGradientGraph(model, { loss: 'loss', wrt: ['w', 'b', 'table'] });
    assert.ok(g.model.graph.nodes.length > model.graph.nodes.length);
    for (const n of g.model.graph.nodes)
      assert.ok(n.domain === '' || n.domain === 'ai.onnx', `${n.name} is in domain ${n.domain}`);
    assert.deepEqual(g.model.opsetImports, [{ domain: '', version: 17 }]);
    // ONNX Runtime's CPU build has a kernel for every node, and every gradient is finite.
    const out = await run(g.model, {
      x: makeTensor(
        'float32',
        [3, 6],
        Array.from({ length: 18 }, (_, i) => Math.sin(i)),
      ),
      ids: makeTensor('int64', [3], [4, 0, 4]),
      w: model.graph.initializers.get('w')!,
      b: model.graph.initializers.get('b')!,
      table: model.graph.initializers.get('table')!,
    });
    for (const p of ['w', 'b', 'table']) {
      const grad = out[g.gradOutputs[p]!]!;
      assert.ok(grad.length > 0 && grad.every(Number.isFinite), p);
    }
  });
});

/**
 * An op with a shape rule (so a graph can hold it) but neither a gradient rule nor a
 * no-gradient mark: the first such unary op, chosen from the registries at run time.
 */
function ruleLessOp(): string {
  const shaped = knownShapeOps();
  const covered = new Set([...differentiableOps(), ...nonDifferentiableOps()]);
  const unary = ['Cos', 'Sin', 'Softplus', 'Elu', 'Selu', 'HardSigmoid', 'Reciprocal', 'Trilu'];
  const op = unary.find((o) => shaped.has(o) && !covered.has(o));
  assert.ok(op, 'some unary op with a shape rule has no gradient rule');
  return op;
}
