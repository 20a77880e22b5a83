// External data, both ways, against models saved by the onnx Python package
// (test/fixtures/onnx/external*, scripts/onnx-fixtures.py): we read theirs (values equal
// to what ONNX Runtime reads from the same files), and we write ours keeping their layout.
//
// Whether the onnx package reads ours back is checked structurally here — every external
// tensor's location, offset and length point at exactly its bytes, in a file beside the
// model, with nothing inline that should be outside — and by ONNX Runtime, which loads
// our files from disk with its own external-data reader. Running onnx.load + checker
// itself would need Python with `onnx` at test time, which the test machine's PATH does
// not guarantee; `scripts/onnx-fixtures.py check FILE` does it by hand.
//
// Also: large models go external by themselves, writing next to the original never
// touches its data, and non-regular files (a FIFO, a folder) are refused without blocking.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { emptyGraph, makeModel, type Model } from '../../src/onnx/ir.js';
import { encodeModel, readModel, writeModel } from '../../src/onnx/serialize.js';
import { float32, type Tensor } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { ModelError, UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const { onnx } = onnxProto;
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'denoiserep-extdata-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of a fixture folder in a fresh temporary folder. */
function copyFixture(name: string): string {
  const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
  for (const f of fs.readdirSync(path.join(fixtures, name)))
    fs.copyFileSync(path.join(fixtures, name, f), path.join(dir, f));
  return dir;
}

const x = float32([3, 16], new Rng(5).fillNormal(new Float32Array(48)));

/** y of a model file as ONNX Runtime reads it from disk (external data by its own reader). */
async function ortFromFile(file: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, logSeverityLevel: 4 });
  const y = (await s.run({ x: new ort.Tensor('float32', x.data as Float32Array, x.dims) })).y!;
  await s.release();
  return y.data as Float32Array;
}

/** y of an in-memory model through the project's session. */
async function ours(m: Model): Promise<Float32Array> {
  const s = await Session.create(m, { threads: 1 });
  const y = (await s.run({ x })).y!;
  await s.release();
  return y.data as Float32Array;
}

interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

/** The initializers of a model file as written: external references, or inline bytes. */
function layoutOf(file: string): Map<string, ExternalRef | 'inline'> {
  const proto = onnx.ModelProto.decode(fs.readFileSync(file));
  const out = new Map<string, ExternalRef | 'inline'>();
  for (const t of proto.graph!.initializer!) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) {
      assert.ok(t.rawData && t.rawData.length > 0, `inline tensor '${t.name}' has raw_data`);
      out.set(t.name!, 'inline');
      continue;
    }
    assert.equal(t.rawData?.length ?? 0, 0, `external tensor '${t.name}' has no raw_data`);
    const kv = new Map(t.externalData!.map((e) => [e.key!, e.value!]));
    out.set(t.name!, {
      location: kv.get('location')!,
      offset: Number(kv.get('offset') ?? 0),
      length: Number(kv.get('length')),
    });
  }
  return out;
}

/**
 * Asserts every external tensor of `file` points at exactly its bytes in a file beside
 * it, that tensors in one file do not overlap, and that offsets are 64-byte aligned.
 */
function assertExternalSound(file: string, m: Model): void {
  const dir = path.dirname(file);
  const byFile = new Map<string, [number, number][]>();
  for (const [name, ref] of layoutOf(file)) {
    const t = m.graph.initializers.get(name)!;
    const want = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (ref === 'inline') continue;
    assert.ok(!path.isAbsolute(ref.location) && !ref.location.includes('/'), ref.location);
    assert.equal(ref.offset % 64, 0, `offset of '${name}' is aligned`);
    assert.equal(ref.length, want.length);
    const data = fs.readFileSync(path.join(dir, ref.location));
    assert.deepEqual(data.subarray(ref.offset, ref.offset + ref.length), Buffer.from(want));
    const spans = byFile.get(ref.location) ?? [];
    spans.push([ref.offset, ref.offset + ref.length]);
    byFile.set(ref.location, spans);
  }
  for (const spans of byFile.values()) {
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++)
      assert.ok(spans[i]![0] >= spans[i - 1]![1], 'no overlap');
  }
}

describe('reading external data saved by the onnx package', () => {
  for (const name of ['external', 'external-multi']) {
    test(`${name}: values equal ONNX Runtime's own reading; the layout is remembered`, async () => {
      const file = path.join(fixtures, name, 'mlp.onnx');
      const m = await readModel(file);
      assert.deepEqual(await ours(m), await ortFromFile(file));
      // Each tensor's bytes are the ones at its offset in its file.
      const theirs = layoutOf(file);
      for (const [k, ref] of theirs) {
        if (ref === 'inline') {
          assert.equal(m.externalData!.has(k), false);
          continue;
        }
        assert.deepEqual(m.externalData!.get(k), {
          location: ref.location,
          offset: ref.offset,
          path: path.join(fixtures, name, ref.location),
        });
        const t = m.graph.initializers.get(k)!;
        const bytes = fs.readFileSync(path.join(fixtures, name, ref.location));
        assert.deepEqual(
          Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
          bytes.subarray(ref.offset, ref.offset + ref.length),
        );
      }
      // onnx kept the 4-byte 'scale' inline (its size threshold); four tensors went out.
      assert.equal(theirs.get('scale'), 'inline');
      assert.equal(m.externalData!.size, 4);
    });
  }
});

describe('writing models with external data', () => {
  test('one data file: the same tensors go out, in the same order, under the new name', async () => {
    const src = path.join(fixtures, 'external', 'mlp.onnx');
    const m = await readModel(src);
    const dir = fs.mkdtempSync(path.join(tmp, 'out-'));
    const out = path.join(dir, 'fused.onnx');
    assert.deepEqual(writeModel(out, m), [path.join(dir, 'fused.onnx.data')]);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['fused.onnx', 'fused.onnx.data']);
    const theirs = layoutOf(src);
    const mine = layoutOf(out);
    assert.deepEqual(
      [...mine].map(([k, r]) => [k, r === 'inline' ? r : r.location]),
      [...theirs].map(([k, r]) => [k, r === 'inline' ? r : 'fused.onnx.data']),
    );
    // Order within the file is the original's (by offset).
    const order = (l: Map<string, ExternalRef | 'inline'>) =>
      [...l]
        .filter(([, r]) => r !== 'inline')
        .sort((a, b) => (a[1] as ExternalRef).offset - (b[1] as ExternalRef).offset)
        .map(([k]) => k);
    assert.deepEqual(order(mine), order(theirs));
    assertExternalSound(out, m);
    // ONNX Runtime reads our files from disk to the original's outputs; we read them back.
    assert.deepEqual(await ortFromFile(out), await ortFromFile(src));
    const back = await readModel(out);
    assert.deepEqual(back.graph.initializers, m.graph.initializers);
    assert.deepEqual(
      [...back.externalData!.values()].map((e) => e.location),
      Array(4).fill('fused.onnx.data'),
    );
  });

  test('one file per tensor: the grouping is kept, one new file per original file', async () => {
    const src = path.join(fixtures, 'external-multi', 'mlp.onnx');
    const m = await readModel(src);
    const dir = fs.mkdtempSync(path.join(tmp, 'multi-'));
    const out = path.join(dir, 'm2.onnx');
    const written = writeModel(out, m);
    assert.equal(written.length, 4);
    const mine = layoutOf(out);
    const locations = [...mine.values()].flatMap((r) => (r === 'inline' ? [] : [r.location]));
    assert.deepEqual(
      [...new Set(locations)].sort(),
      [0, 1, 2, 3].map((i) => `m2.onnx.${i}.data`),
    );
    assert.equal(new Set(locations).size, locations.length, 'one tensor per file, as before');
    assertExternalSound(out, m);
    assert.deepEqual(await ortFromFile(out), await ortFromFile(src));
  });

  test("writing beside the original leaves the original's files untouched", async () => {
    const dir = copyFixture('external');
    const before = fs.readFileSync(path.join(dir, 'mlp.onnx.data'));
    const m = await readModel(path.join(dir, 'mlp.onnx'));
    // Change a weight, as fusion does, and write next to the original.
    const w = m.graph.initializers.get('fc1.weight')!;
    const changed: Tensor = { ...w, data: (w.data as Float32Array).map((v) => v * 2) };
    m.graph.initializers.set('fc1.weight', changed);
    writeModel(path.join(dir, 'fused.onnx'), m);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'mlp.onnx.data')), before);
    const orig = await readModel(path.join(dir, 'mlp.onnx'));
    assert.deepEqual(orig.graph.initializers.get('fc1.weight'), w);
    const fused = await readModel(path.join(dir, 'fused.onnx'));
    assert.deepEqual(fused.graph.initializers.get('fc1.weight'), changed);
  });

  test('a data file that is the one the model was read from is refused, before writing', async () => {
    const dir = copyFixture('external');
    const m = await readModel(path.join(dir, 'mlp.onnx'));
    const before = fs.readFileSync(path.join(dir, 'mlp.onnx.data'));
    // In place: mlp.onnx's data file would be mlp.onnx.data again.
    assert.throws(
      () => writeModel(path.join(dir, 'mlp.onnx'), m),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message.includes(
          `its data file ${path.join(dir, 'mlp.onnx.data')} is the one the model's tensors were read from`,
        ),
    );
    assert.deepEqual(fs.readFileSync(path.join(dir, 'mlp.onnx.data')), before);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['mlp.onnx', 'mlp.onnx.data']);
  });

  test('a tensor added since reading (a copy made by fusion) joins the first data file', async () => {
    const m = await readModel(path.join(fixtures, 'external', 'mlp.onnx'));
    const w = m.graph.initializers.get('fc1.weight')!;
    m.graph.initializers.set('fc1.weight.copy', { ...w, data: w.data.slice() });
    m.graph.initializers.set('tiny.copy', float32([2], [1, 2]));
    const dir = fs.mkdtempSync(path.join(tmp, 'added-'));
    writeModel(path.join(dir, 'a.onnx'), m);
    const l = layoutOf(path.join(dir, 'a.onnx'));
    assert.equal((l.get('fc1.weight.copy') as ExternalRef).location, 'a.onnx.data');
    assert.equal(l.get('tiny.copy'), 'inline', 'under 1 KiB stays inline');
    assertExternalSound(path.join(dir, 'a.onnx'), m);
  });

  test('over the inline limit a model goes external by itself; under it, inline', async () => {
    const g = emptyGraph('big');
    g.inputs.push({ name: 'x', dtype: 'float32', shape: ['N', 16] });
    g.initializers.set('w', float32([16, 300], new Rng(1).fillNormal(new Float32Array(4800))));
    g.initializers.set('b', float32([4], [1, 2, 3, 4]));
    g.nodes.push({
      name: 'mm',
      opType: 'MatMul',
      domain: '',
      inputs: ['x', 'w'],
      outputs: ['y'],
      attrs: {},
    });
    g.outputs.push({ name: 'y', dtype: 'float32', shape: ['N', 300] });
    const m = makeModel(g);
    const dir = fs.mkdtempSync(path.join(tmp, 'auto-'));
    // 19,216 bytes of tensors: a limit of 10,000 sends 'w' out ('b' is under 1 KiB).
    assert.deepEqual(writeModel(path.join(dir, 'big.onnx'), m, { inlineLimit: 10_000 }), [
      path.join(dir, 'big.onnx.data'),
    ]);
    const l = layoutOf(path.join(dir, 'big.onnx'));
    assert.equal((l.get('w') as ExternalRef).length, 19_200);
    assert.equal(l.get('b'), 'inline');
    assertExternalSound(path.join(dir, 'big.onnx'), m);
    assert.deepEqual(writeModel(path.join(dir, 'small.onnx'), m), []);
    assert.equal(layoutOf(path.join(dir, 'small.onnx')).get('w'), 'inline');
    // 'never' writes a model read with external data inline; 'always' sends it out.
    const ext = await readModel(path.join(fixtures, 'external', 'mlp.onnx'));
    assert.deepEqual(writeModel(path.join(dir, 'inline.onnx'), ext, { externalData: 'never' }), []);
    assert.ok([...layoutOf(path.join(dir, 'inline.onnx')).values()].every((r) => r === 'inline'));
    assert.equal(
      writeModel(path.join(dir, 'always.onnx'), m, { externalData: 'always' }).length,
      1,
    );
  });

  test('a model holding over 2 GB inline is refused before encoding, not truncated', () => {
    const g = emptyGraph('huge');
    const t = float32([1], [0]);
    // A stand-in that reports 3 GB without allocating it: only its size is read.
    Object.defineProperty(t.data, 'byteLength', { value: 3 * 2 ** 30 });
    g.initializers.set('w', t);
    assert.throws(
      () => encodeModel(makeModel(g)),
      (e: unknown) =>
        e instanceof ModelError &&
        /model 'huge' holds 3\.00 GB of tensors inline, over protobuf's 2 GB limit/.test(e.message),
    );
  });
});

describe('non-regular files', () => {
  const mkfifo = (p: string) => spawnSync('mkfifo', [p]).status === 0;

  test('a FIFO or a folder named as a location is refused without blocking', async (t) => {
    for (const kind of ['fifo', 'dir'] as const) {
      const dir = copyFixture('external');
      const data = path.join(dir, 'mlp.onnx.data');
      fs.rmSync(data);
      if (kind === 'fifo' && !mkfifo(data)) {
        t.skip('mkfifo is not available');
        continue;
      }
      if (kind === 'dir') fs.mkdirSync(data);
      await assert.rejects(readModel(path.join(dir, 'mlp.onnx')), (e: unknown) => {
        assert.ok(e instanceof ModelError, String(e));
        assert.match(
          e.message,
          new RegExp(
            `tensor 'fc1\\.weight': cannot read external data 'mlp\\.onnx\\.data': ${kind === 'fifo' ? 'a FIFO' : 'a folder'}, not a regular file`,
          ),
        );
        return true;
      });
    }
  });

  test('a FIFO given as the model file is refused without blocking', async (t) => {
    const p = path.join(tmp, 'model-fifo.onnx');
    if (!mkfifo(p)) return t.skip('mkfifo is not available');
    await assert.rejects(
      readModel(p),
      (e: unknown) =>
        e instanceof ModelError &&
        e.message === `cannot read model file ${p}: a FIFO, not a regular file`,
    );
  });
});
