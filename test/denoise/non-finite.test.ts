// A NaN or ±Inf in a model's weights or in denoisers is refused wherever it would be fused
// or converted, with a NonFiniteError (a DataError, exit code 2) naming the tensor, and
// never written: fuseModel, fit (before its statistics pass), `fuse` and `convert`.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildProgram, describeError, EXIT } from '../../src/cli/index.js';
import { fit } from '../../src/denoise/api/index.js';
import { writeDenoisers } from '../../src/denoise/denoiser-file.js';
import { assertFiniteLayers, fuseModel } from '../../src/denoise/fuse.js';
import { initDenoisers, planConversion } from '../../src/denoise/plan.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import type { Model } from '../../src/onnx/ir.js';
import { writeModel } from '../../src/onnx/serialize.js';
import { NonFiniteError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'denoiserep-nonfinite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A two-layer MLP on 28x28x1 images (so that the embedded data can feed it). */
function mlp(): Model {
  const b = new GraphBuilder({ seed: 1 });
  const x = b.input('input', 'float32', ['N', 1, 28, 28]);
  const flat = b.flatten(x);
  const w1 = b.scope('fc1', () => b.param('weight', [16, 784], { kind: 'uniform', bound: 0.05 }));
  const b1 = b.scope('fc1', () => b.param('bias', [16], { kind: 'uniform', bound: 0.05 }));
  const h = b.relu(b.gemm(flat, w1, b1, { transB: 1 }));
  const w2 = b.scope('fc2', () => b.param('weight', [10, 16], { kind: 'uniform', bound: 0.3 }));
  const b2 = b.scope('fc2', () => b.param('bias', [10], { kind: 'uniform', bound: 0.3 }));
  b.output(b.gemm(h, w2, b2, { transB: 1 }), 'logits');
  return b.build().model;
}

function poisoned(tensor: string, value: number): Model {
  const m = mlp();
  (m.graph.initializers.get(tensor)!.data as Float32Array)[3] = value;
  return m;
}

const isNonFinite = (tensor: string, pattern: RegExp) => (e: unknown) =>
  e instanceof NonFiniteError && e.detail.tensor === tensor && pattern.test(e.message);

describe('non-finite weights and denoisers', () => {
  test('fuseModel: a NaN denoiser, an Inf weight or bias, and an overflow, each named', () => {
    const m = mlp();
    const plan = planConversion(m.graph, { filter: 'all' });
    const values = initDenoisers(plan, 0);
    const name = plan.layers[1]!.names.weight;
    (values.get(name)!.data as Float32Array)[0] = Number.NaN;
    assert.throws(
      () => fuseModel(m, plan, values),
      isNonFinite(name, /denoiser tensor 'fc2\.denoise\.weight' is not finite: element 0 is NaN/),
    );
    const clean = initDenoisers(plan, 0);
    for (const [t, v] of [
      ['fc1.weight', Number.POSITIVE_INFINITY],
      ['fc2.bias', Number.NEGATIVE_INFINITY],
    ] as const) {
      const bad = poisoned(t, v);
      assert.throws(() => fuseModel(bad, plan, clean), isNonFinite(t, new RegExp(`'${t}'.*${v}`)));
      assert.throws(() => assertFiniteLayers(bad, plan), isNonFinite(t, /of layer 'fc[12]'/));
    }
    // Finite inputs whose product overflows float32.
    const huge = initDenoisers(plan, 0);
    (huge.get(plan.layers[0]!.names.weight)!.data as Float32Array).fill(3e38);
    const big = mlp();
    (big.graph.initializers.get('fc1.weight')!.data as Float32Array).fill(1e3);
    assert.throws(() => fuseModel(big, plan, huge), isNonFinite('fc1.weight', /overflow/));
    // And the clean case fuses.
    assert.ok(fuseModel(m, plan, clean).graph.initializers.has('fc1.weight'));
  });

  test('fit refuses a model with a NaN weight before its statistics pass, writing nothing', async () => {
    const file = join(dir, 'nan.onnx');
    writeModel(file, poisoned('fc1.weight', Number.NaN));
    let progressed = false;
    await assert.rejects(
      fit(file, {
        data: 'embedded',
        out: join(dir, 'fused.onnx'),
        threads: 1,
        onProgress: () => {
          progressed = true;
        },
      }),
      isNonFinite('fc1.weight', /weight 'fc1\.weight' of layer 'fc1' is not finite/),
    );
    assert.equal(progressed, false, 'no work was started');
    assert.ok(!existsSync(join(dir, 'fused.onnx')));
  });

  test('the fuse and convert commands: exit 2, one line naming the tensor, no output', async () => {
    const good = join(dir, 'good.onnx');
    const m = mlp();
    writeModel(good, m);
    const plan = planConversion(m.graph, { filter: 'all' });
    const values = initDenoisers(plan, 0);
    (values.get(plan.layers[0]!.names.weight)!.data as Float32Array)[5] = Number.NaN;
    const dfile = join(dir, 'nan.safetensors');
    writeDenoisers(dfile, plan, 'all', values);
    const bad = join(dir, 'inf.onnx');
    writeModel(bad, poisoned('fc2.weight', Number.POSITIVE_INFINITY));
    // The commands' actions, in process: the error they end with, and its one line and code.
    const run = async (...args: string[]) => {
      try {
        await buildProgram().parseAsync(['node', 'denoiserep', ...args]);
      } catch (e) {
        return describeError(e);
      }
      return undefined;
    };
    const cases: [string[], RegExp, string][] = [
      [
        ['fuse', good, '--denoisers', dfile, '--out', join(dir, 'f.onnx')],
        /'fc1\.denoise\.weight' is not finite: element 5 is NaN/,
        join(dir, 'f.onnx'),
      ],
      [
        ['convert', bad, '--out', join(dir, 'd.safetensors')],
        /weight 'fc2\.weight' of layer 'fc2' is not finite/,
        join(dir, 'd.safetensors'),
      ],
    ];
    for (const [args, pattern, out] of cases) {
      const r = await run(...args, '--threads', '1');
      assert.ok(r, `${args[0]} did not fail`);
      assert.equal(r.code, EXIT.data, args[0]);
      assert.ok(!r.line.includes('\n'), r.line);
      assert.match(r.line, pattern);
      assert.ok(!existsSync(out), `${args[0]} wrote ${out}`);
    }
  });
});
