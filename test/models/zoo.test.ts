// The model zoo: a generated entry is written, read back with its sha256 checked, and
// refused when its weights or manifest are damaged (the CLI: test/cli/zoo.e2e.test.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadDiffusionModel } from '../../src/diffusion/load.js';
import { getDiffusionPreset, getPreset } from '../../src/models/registry.js';
import { unetInitialWeights } from '../../src/models/unet-graph.js';
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
    // A refused entry is refused before anything is written.
    const fresh = mkdtempSync(join(root, 'refused-'));
    assert.throws(() => writeZooEntry({ ...entry, root: fresh, acc1: 900 }), /acc1 must be/);
    assert.deepEqual(readdirSync(fresh), []);
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

  test('a diffusion entry: a probe cell required, listed apart, loaded as a U-Net', async () => {
    const other = mkdtempSync(join(root, 'unet-'));
    const unet = getDiffusionPreset('ddpm-unet-fmnist-micro');
    const weights = unetInitialWeights(unet, 3);
    const base = { ...entry, root: other, def: unet, values: weights };
    assert.throws(() => writeZooEntry(base), /probe \{ t, block \} is required/);
    assert.throws(
      () => writeZooEntry({ ...entry, root: other, probe: { t: 0, block: 'mid' } }),
      /only there/,
    );
    writeZooEntry({ ...base, probe: { t: 25, block: 'mid' } });
    writeZooEntry({ ...entry, root: other });
    assert.deepEqual(zooEntries(other), ['ddpm-unet-fmnist-micro', 'mlp-fmnist']);
    assert.deepEqual(zooEntries(other, 'backbone'), ['mlp-fmnist']);
    assert.deepEqual(zooEntries(other, 'diffusion'), ['ddpm-unet-fmnist-micro']);
    assert.throws(
      () => loadZooModel('zoo:ddpm-unet-fmnist-micro', other),
      (e) => e instanceof UsageError && /is a diffusion U-Net, not a classifier/.test(e.message),
    );
    const file = join(other, 'ddpm-unet-fmnist-micro', 'manifest.json');
    const good = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    for (const probe of [undefined, { t: -1, block: 'mid' }, { t: 1.5, block: 'mid' }, { t: 3 }]) {
      writeFileSync(file, JSON.stringify({ ...good, probe }));
      assert.throws(
        () => readZooManifest('zoo:ddpm-unet-fmnist-micro', other),
        (e) => e instanceof DataError && /needs probe: \{ t, block \}/.test(e.message),
        JSON.stringify(probe),
      );
    }
    writeFileSync(file, JSON.stringify(good));
    process.env.DENOISEREP_ZOO = other;
    try {
      const u = await loadDiffusionModel('zoo:ddpm-unet-fmnist-micro');
      assert.deepEqual(u.probeCell, { t: 25, block: 'mid' });
      assert.equal(u.def.name, 'ddpm-unet-fmnist-micro');
      for (const name of weights.names())
        assert.deepEqual(u.values.get(name).data, weights.get(name).data, name);
      const w = join(other, 'ddpm-unet-fmnist-micro', 'model.safetensors');
      const bytes = readFileSync(w);
      bytes[bytes.length - 1]! ^= 1;
      writeFileSync(w, bytes);
      await assert.rejects(loadDiffusionModel('zoo:ddpm-unet-fmnist-micro'), /does not match/);
    } finally {
      delete process.env.DENOISEREP_ZOO;
    }
  });
});
