// The model zoo: a generated entry is written, read back with its sha256 checked, and
// refused when its weights or manifest are damaged (the CLI: test/cli/zoo.e2e.test.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getPreset } from '../../src/models/registry.js';
import { initialWeights } from '../../src/models/weights.js';
import {
  isZooRef,
  loadZooModel,
  readZooManifest,
  sha256File,
  writeZooEntry,
  zooEntries,
} from '../../src/models/zoo.js';
import { DataError, UsageError } from '../../src/util/errors.js';

const root = mkdtempSync(join(tmpdir(), 'denoiserep-zoo-'));
after(() => rmSync(root, { recursive: true, force: true }));

const def = getPreset('mlp-fmnist');
const values = initialWeights(def, 4);
const entry = {
  root,
  def,
  values,
  commands: ['denoiserep pretrain --model mlp-fmnist --epochs 1'],
  commit: '0123abc',
  data: 'fashion-mnist embedded subset',
  acc1: 12.5,
  testImages: 2000,
};

describe('zoo', () => {
  before(() => {
    writeZooEntry(entry);
  });

  test('writes model.safetensors and a manifest whose sha256 is the file’s', () => {
    const m = readZooManifest('zoo:mlp-fmnist', root);
    assert.equal(m.preset, 'mlp-fmnist');
    assert.equal(m.weights, 'model.safetensors');
    assert.equal(m.sha256, sha256File(join(root, 'mlp-fmnist', 'model.safetensors')));
    assert.equal(m.acc1, 12.5);
    assert.deepEqual(m.commands, entry.commands);
    assert.deepEqual(zooEntries(root), ['mlp-fmnist']);
    assert.ok(isZooRef('zoo:x') && !isZooRef('x.onnx'));
  });

  test('loads the preset with the same weights as written', () => {
    const z = loadZooModel('zoo:mlp-fmnist', root);
    assert.equal(z.source, 'zoo:mlp-fmnist');
    for (const name of values.names()) {
      assert.deepEqual(z.values.get(name).data, values.get(name).data, name);
      assert.deepEqual(z.model.graph.initializers.get(name)!.data, values.get(name).data, name);
    }
  });

  test('a changed weights file is a DataError naming it and both hashes', () => {
    const other = mkdtempSync(join(root, 'bad-'));
    writeZooEntry({ ...entry, root: other });
    const file = join(other, 'mlp-fmnist', 'model.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(file, bytes);
    assert.throws(
      () => loadZooModel('zoo:mlp-fmnist', other),
      (e) =>
        e instanceof DataError &&
        e.message.includes(file) &&
        /sha256 [0-9a-f]{64} does not match the manifest's [0-9a-f]{64}/.test(e.message),
    );
    rmSync(file);
    assert.throws(
      () => loadZooModel('zoo:mlp-fmnist', other),
      /weights of zoo:mlp-fmnist are missing/,
    );
  });

  test('a malformed manifest is a DataError naming the file and the field', () => {
    const other = mkdtempSync(join(root, 'manifest-'));
    writeZooEntry({ ...entry, root: other });
    const file = join(other, 'mlp-fmnist', 'manifest.json');
    const good = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    for (const [patch, re] of [
      [{ acc1: 0.9e3 }, /acc1 must be a percentage/],
      [{ sha256: 'abc' }, /sha256 must be 64/],
      [{ weights: '../x.safetensors' }, /weights must be a file name/],
      [{ preset: 'vit-micro' }, /does not match the entry name/],
      [{ commands: [] }, /commands/],
      [{ format: 'other' }, /format/],
    ] as const) {
      writeFileSync(file, JSON.stringify({ ...good, ...patch }));
      assert.throws(
        () => readZooManifest('zoo:mlp-fmnist', other),
        (e) => e instanceof DataError && e.message.startsWith(file) && re.test(e.message),
        JSON.stringify(patch),
      );
    }
    writeFileSync(file, '{ not json');
    assert.throws(() => readZooManifest('zoo:mlp-fmnist', other), /not valid JSON/);
  });

  test('an unknown entry is a usage error listing the entries', () => {
    assert.throws(
      () => loadZooModel('zoo:vit-tiny-fmnist', root),
      (e) =>
        e instanceof UsageError &&
        /no zoo entry 'vit-tiny-fmnist'/.test(e.message) &&
        /mlp-fmnist/.test(e.message),
    );
    assert.throws(() => readZooManifest('zoo:../etc', root), UsageError);
  });
});
