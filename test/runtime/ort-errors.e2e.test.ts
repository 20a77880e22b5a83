// ONNX Runtime's own log stays out of the terminal, and its errors become the tool's
// one-line typed errors naming the model: at session creation (an op no provider has)
// and at run time (a Reshape that cannot apply). The log is checked in a child process,
// since ONNX Runtime writes it to the process's stderr directly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { emptyGraph, type Graph, makeModel } from '../../src/onnx/ir.js';
import { float32, int64 } from '../../src/onnx/tensor.js';
import { ortMessage, Session } from '../../src/runtime/session.js';
import { ModelError } from '../../src/util/errors.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'denoiserep-orterr-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * y = Reshape(x, [3, 3]) for x float32 [2, 4]: valid to load, fails to run (8 elements
 * into 9), and carries an unused initializer, which ONNX Runtime warns about when loading.
 */
function badReshape(): Graph {
  const g = emptyGraph('bad-reshape');
  g.inputs.push({ name: 'x', dtype: 'float32', shape: [2, 4] });
  g.initializers.set('s', int64([2], [3, 3]));
  g.initializers.set('unused', float32([1], [1]));
  g.nodes.push({
    name: 'r',
    opType: 'Reshape',
    domain: '',
    inputs: ['x', 's'],
    outputs: ['y'],
    attrs: {},
  });
  g.outputs.push({ name: 'y', dtype: 'float32', shape: null });
  return g;
}

test('ortMessage: one line, no C++ source locations, the reason kept', () => {
  const raw =
    "Non-zero status code returned while running Reshape node. Name:'r' Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:91 onnxruntime::ReshapeHelper::ReshapeHelper(const onnxruntime::TensorShape&, onnxruntime::TensorShapeVector&, bool) input_shape_size == requested_shape_size was false. The input tensor cannot be reshaped to the requested shape. Input shape:{2,4}, requested shape:{3,3}\n";
  assert.equal(
    ortMessage(new Error(raw)),
    "Non-zero status code returned while running Reshape node. Name:'r' Status Message: The input tensor cannot be reshaped to the requested shape. Input shape:{2,4}, requested shape:{3,3}",
  );
  assert.equal(
    ortMessage(new Error('[ONNXRuntimeError] : 10 : INVALID_GRAPH : bad\n  graph')),
    'bad graph',
  );
  assert.equal(ortMessage('x'.repeat(1000)).length, 400);
});

describe('errors from ONNX Runtime are typed, one line, naming the model', () => {
  test('at run time', async () => {
    const s = await Session.create(makeModel(badReshape()), { threads: 1, source: 'r.onnx' });
    await assert.rejects(s.run({ x: float32([2, 4], new Float32Array(8)) }), (e: unknown) => {
      assert.ok(e instanceof ModelError, String(e));
      assert.match(
        e.message,
        /^r\.onnx: onnxruntime failed: .*Reshape node\. Name:'r'.*Input shape:\{2,4\}, requested shape:\{3,3\}$/,
      );
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    await s.release();
  });

  test('at session creation (an op no execution provider has)', async () => {
    const g = emptyGraph('g');
    g.inputs.push({ name: 'x', dtype: 'float32', shape: [2] });
    g.nodes.push({
      name: 'n',
      opType: 'NoSuchOp',
      domain: 'com.microsoft',
      inputs: ['x'],
      outputs: ['y'],
      attrs: {},
    });
    g.outputs.push({ name: 'y', dtype: 'float32', shape: null });
    const m = makeModel(g);
    m.opsetImports.push({ domain: 'com.microsoft', version: 1 });
    await assert.rejects(Session.create(m, { source: 'c.onnx' }), (e: unknown) => {
      assert.ok(e instanceof ModelError, String(e));
      assert.match(e.message, /^c\.onnx: onnxruntime cannot load the model: .*NoSuchOp/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  });
});

describe("ONNX Runtime's log", () => {
  /** Runs the bad model in a child process; returns its stdout (the message) and stderr. */
  function runChild(env: Record<string, string>): { out: string; err: string } {
    const script = join(tmp, 'child.mts');
    const src = (p: string) => pathToFileURL(join(repo, 'src', p)).href;
    writeFileSync(
      script,
      `import { makeModel, emptyGraph } from '${src('onnx/ir.ts')}';
import { float32, int64 } from '${src('onnx/tensor.ts')}';
import { Session } from '${src('runtime/session.ts')}';
const g = emptyGraph('bad-reshape');
g.inputs.push({ name: 'x', dtype: 'float32', shape: [2, 4] });
g.initializers.set('s', int64([2], [3, 3]));
g.initializers.set('unused', float32([1], [1]));
g.nodes.push({ name: 'r', opType: 'Reshape', domain: '', inputs: ['x', 's'], outputs: ['y'], attrs: {} });
g.outputs.push({ name: 'y', dtype: 'float32', shape: null });
const s = await Session.create(makeModel(g), { threads: 1, source: 'r.onnx' });
try { await s.run({ x: float32([2, 4], new Float32Array(8)) }); } catch (e) { console.log((e as Error).message); }
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
      cwd: repo,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    assert.equal(r.status, 0, r.stderr);
    return { out: r.stdout, err: r.stderr };
  }

  test('is silent by default: only the tool’s one line, no coloured [W:]/[E:] lines', () => {
    const { out, err } = runChild({ DENOISEREP_ORT_LOG: '' });
    assert.match(out, /^r\.onnx: onnxruntime failed: .*requested shape:\{3,3\}\n$/);
    assert.doesNotMatch(err, /onnxruntime/);
    assert.ok(!err.includes('\u001b['), 'no colour codes');
  });

  test('DENOISEREP_ORT_LOG=warning brings it back (so the silence above is real)', () => {
    const { err } = runChild({ DENOISEREP_ORT_LOG: 'warning' });
    assert.match(err, /\[W:onnxruntime:.*Removing initializer 'unused'/);
    assert.match(err, /\[E:onnxruntime:.*Reshape/);
  });
});
