// Graph validation: names, dangling inputs, double producers, cycles, missing outputs,
// unknown ops and domains, and dtype mismatches found by shape inference.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelError } from '../../src/util/errors.js';
import { emptyGraph, type Graph, makeModel, type Node } from '../../src/onnx/ir.js';
import { decodeModel, encodeModel } from '../../src/onnx/serialize.js';
import { inferShapes, knownShapeOps } from '../../src/onnx/shapes.js';
import { float32 } from '../../src/onnx/tensor.js';
import { ensureNodeNames, validateGraph } from '../../src/onnx/validate.js';

function node(name: string, opType: string, inputs: string[], outputs: string[]): Node {
  return { name, opType, domain: '', inputs, outputs, attrs: {} };
}

/** x -> Relu (r) -> Add(r, w) (y), y the output; w an initializer. */
function chain(): Graph {
  const g = emptyGraph('chain');
  g.inputs.push({ name: 'x', dtype: 'float32', shape: ['N', 2] });
  g.initializers.set('w', float32([2], [1, 2]));
  g.nodes.push(node('relu', 'Relu', ['x'], ['r']), node('add', 'Add', ['r', 'w'], ['y']));
  g.outputs.push({ name: 'y', dtype: 'float32', shape: ['N', 2] });
  return g;
}

/** Asserts a ModelError whose message contains every fragment. */
function throwsModel(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelError, `expected a ModelError, got ${String(e)}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `'${e.message}' lacks '${f}'`);
    return true;
  });
}

describe('validateGraph', () => {
  test('a well-formed graph passes, with every check on', () => {
    validateGraph(chain(), { source: 'm.onnx', knownOps: knownShapeOps(), inferTypes: 17 });
  });

  test('an empty or repeated node name is refused; ensureNodeNames repairs both', () => {
    const g = chain();
    g.nodes[0]!.name = '';
    throwsModel(
      () => validateGraph(g, { source: 'm.onnx' }),
      'm.onnx',
      'node #0 (Relu) has no name',
    );
    g.nodes[0]!.name = 'add';
    throwsModel(() => validateGraph(g), "two nodes are named 'add'");
    assert.equal(ensureNodeNames(g), 1);
    assert.deepEqual(
      g.nodes.map((n) => n.name),
      ['add', 'add_1'],
    );
    validateGraph(g);
    const h = chain();
    h.nodes[0]!.name = '';
    h.nodes[1]!.name = '';
    assert.equal(ensureNodeNames(h), 2);
    assert.deepEqual(
      h.nodes.map((n) => n.name),
      ['Relu_0', 'Add_1'],
    );
    assert.equal(ensureNodeNames(h), 0, 'already unique: nothing renamed');
  });

  test('a dangling input names the node, its op and the value', () => {
    const g = chain();
    g.nodes[1]!.inputs[1] = 'ghost';
    throwsModel(
      () => validateGraph(g, { source: 'm.onnx' }),
      "m.onnx: graph 'chain': node 'add' (Add) reads 'ghost', which no node, graph input or initializer provides",
    );
  });

  test('a value produced twice is refused, naming both producers', () => {
    const g = chain();
    g.nodes[1]!.outputs[0] = 'r';
    g.outputs[0]!.name = 'r';
    throwsModel(() => validateGraph(g), "value 'r' is produced twice", "node 'relu'", "node 'add'");
    const h = chain();
    h.nodes[0]!.outputs[0] = 'x';
    h.nodes[1]!.inputs[0] = 'x';
    throwsModel(() => validateGraph(h), "value 'x' is produced twice", 'a graph input');
    const k = chain();
    k.nodes[0]!.outputs[0] = 'w';
    throwsModel(() => validateGraph(k), "value 'w' is produced twice", 'an initializer');
  });

  test('an initializer also listed as an input (IR < 4) is one producer, not two', () => {
    const g = chain();
    g.inputs.push({ name: 'w', dtype: 'float32', shape: [2] });
    validateGraph(g);
  });

  test('a cycle names a node on it', () => {
    const g = chain();
    // relu reads y, which add computes from relu's output.
    g.nodes[0]!.inputs[0] = 'y';
    throwsModel(() => validateGraph(g, { source: 'm.onnx' }), 'm.onnx', 'cycle', "node 'relu'");
  });

  test('a graph output nobody produces is refused', () => {
    const g = chain();
    g.outputs.push({ name: 'z', dtype: 'float32', shape: null });
    throwsModel(() => validateGraph(g), "graph output 'z' is not produced");
  });

  test('unknown ops and other domains are refused only when knownOps is given', () => {
    const g = chain();
    g.nodes[0]!.opType = 'FancyRelu';
    validateGraph(g);
    throwsModel(
      () => validateGraph(g, { knownOps: ['Relu', 'Add'] }),
      "node 'relu' uses unsupported op 'FancyRelu'",
    );
    const h = chain();
    h.nodes[0]!.domain = 'com.microsoft';
    throwsModel(
      () => validateGraph(h, { knownOps: ['Relu', 'Add'] }),
      "node 'relu' uses op 'Relu' of domain 'com.microsoft'",
    );
    h.nodes[0]!.domain = 'ai.onnx';
    validateGraph(h, { knownOps: ['Relu', 'Add'] });
  });

  test('a subgraph may read outer values, but not undefined ones', () => {
    const g = chain();
    const body = emptyGraph('then');
    body.nodes.push(node('inner', 'Relu', ['r'], ['t']));
    body.outputs.push({ name: 't', dtype: 'float32', shape: null });
    g.inputs.push({ name: 'c', dtype: 'bool', shape: [] });
    g.nodes.push({
      ...node('if', 'If', ['c'], ['z']),
      attrs: {
        then_branch: { type: 'graph', value: body },
        else_branch: { type: 'graph', value: body },
      },
    });
    validateGraph(g);
    body.nodes[0]!.inputs[0] = 'nowhere';
    throwsModel(
      () => validateGraph(g),
      "node 'if' attribute 'then_branch'",
      "node 'inner' (Relu) reads 'nowhere'",
    );
  });

  test('Add(float32, int64): shape inference names the node and both dtypes', () => {
    const g = chain();
    g.initializers.set('w', { dtype: 'int64', dims: [2], data: new BigInt64Array([1n, 2n]) });
    validateGraph(g, { source: 'm.onnx' }); // structure is fine
    throwsModel(() => inferShapes(g, 17), "node 'add' (Add)", 'int64', 'float32');
    throwsModel(
      () => validateGraph(g, { source: 'm.onnx', inferTypes: 17 }),
      "m.onnx: node 'add' (Add)",
      'int64',
    );
  });

  test('decodeModel validates what it loads, and names the file', () => {
    const g = chain();
    g.nodes[1]!.inputs[1] = 'ghost';
    const bytes = encodeModel(makeModel(g));
    throwsModel(
      () => decodeModel(bytes, { source: 'bad.onnx' }),
      'bad.onnx',
      "node 'add' (Add) reads 'ghost'",
    );
    // Unnamed and duplicate node names in a file are repaired, not refused.
    const h = chain();
    h.nodes[0]!.name = '';
    h.nodes[1]!.name = '';
    const back = decodeModel(encodeModel(makeModel(h)), { source: 'ok.onnx' });
    assert.deepEqual(
      back.graph.nodes.map((n) => n.name),
      ['Relu_0', 'Add_1'],
    );
  });
});
