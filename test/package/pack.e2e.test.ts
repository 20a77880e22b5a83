// The published package works: `npm pack` carries bin/, dist/ (no stale or source-map
// files) and the data, within a size bound; the tarball installs in an empty folder
// from npm's local cache (falling back to the registry only for what the cache lacks);
// there `npx denoiserep --help` and `inspect` run quietly, the library imports by its
// package name with its types, and `eval --data embedded` reads the shipped data. Also,
// inside the clone, `npx denoiserep` prints no npm warning. Slow (build, install): e2e.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { zooEntries } from '../../src/models/zoo.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'denoiserep-pack-'));
const app = join(dir, 'app');
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Upper bound on the tarball (bytes). About 18 MB: 5.3 MB of Fashion-MNIST subset (gzip,
 * so it does not shrink), 12.9 MB of shipped weights (ResNet, ViT and the DDPM U-Net's
 * 8.4 MB; float32 barely compresses) and the compiled code. Each further shipped model
 * needs it raised, on purpose.
 */
const MAX_TARBALL_BYTES = 20 * 1024 * 1024;

// Quiet, offline-first npm, and no CUDA download by onnxruntime-node's install script
// whatever the npm version (npm 11 blocks dependency install scripts by default anyway).
const env = {
  ...process.env,
  ONNXRUNTIME_NODE_INSTALL: 'skip',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};

function sh(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
}

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}
let pack: PackResult;
let installedOffline = false;

before(() => {
  // npm pack runs `prepare`, which rebuilds dist/ from a clean folder.
  const p = sh('npm', ['pack', '--json', '--pack-destination', dir], repo);
  assert.equal(p.status, 0, p.stderr);
  pack = (JSON.parse(p.stdout) as PackResult[])[0]!;
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  const tarball = join(dir, pack.filename);
  let i = sh('npm', ['install', '--offline', '--no-save', tarball], app);
  installedOffline = i.status === 0;
  if (!installedOffline) i = sh('npm', ['install', '--prefer-offline', '--no-save', tarball], app);
  assert.equal(i.status, 0, i.stderr);
});

describe('npm pack', () => {
  test('the tarball holds bin/, dist/ with types, the data; nothing else; within the bound', (t) => {
    const paths = pack.files.map((f) => f.path);
    t.diagnostic(
      `${pack.filename}: ${pack.size} bytes (${(pack.size / 1e6).toFixed(2)} MB), unpacked ${pack.unpackedSize}, ${paths.length} files; bound ${MAX_TARBALL_BYTES}`,
    );
    assert.ok(pack.size <= MAX_TARBALL_BYTES, `tarball ${pack.size} bytes`);
    for (const need of [
      'bin/denoiserep.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/index.js',
      'package.json',
      'README.md',
      'LICENSE',
      'data/fashion-mnist/train-images-idx3-ubyte.gz',
      'data/fashion-mnist/t10k-labels-idx1-ubyte.gz',
      'data/fashion-mnist/LICENSE',
    ])
      assert.ok(paths.includes(need), `missing ${need}`);
    // Every shipped backbone: its weights and manifest.
    for (const entry of zooEntries(join(repo, 'zoo')))
      for (const f of ['manifest.json', 'model.safetensors'])
        assert.ok(paths.includes(`zoo/${entry}/${f}`), `missing zoo/${entry}/${f}`);
    const top = new Set(paths.map((p) => (p.includes('/') ? p.split('/')[0]! : p)));
    assert.deepEqual(
      [...top].filter(
        (p) => !['bin', 'dist', 'data', 'zoo', 'package.json', 'README.md', 'LICENSE'].includes(p),
      ),
      [],
    );
    assert.deepEqual(
      paths.filter((p) => p.endsWith('.map')),
      [],
    );
    // Every compiled file comes from a source file that exists now: no stale build output.
    for (const p of paths.filter((q) => q.startsWith('dist/') && q.endsWith('.js')))
      assert.ok(existsSync(join(repo, 'src', p.slice(5, -3) + '.ts')), `stale ${p}`);
  });
});

describe('installed in an empty folder', () => {
  test('npx denoiserep --help: exit 0, the usage, and not a byte on stderr', (t) => {
    t.diagnostic(
      `installed ${installedOffline ? 'offline from the npm cache' : 'with --prefer-offline'}`,
    );
    const r = sh('npx', ['--no-install', 'denoiserep', '--help'], app);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: denoiserep \[options\] \[command\]/);
    for (const c of [
      'demo',
      'pretrain',
      'eval',
      'inspect',
      'convert',
      'fit',
      'finetune',
      'fuse',
      'verify',
    ])
      assert.match(r.stdout, new RegExp(`\\n  ${c} `));
    assert.equal(r.stderr, '');
  });

  test('the library by its package name (with types); inspect and eval on its model and shipped data', () => {
    // A model written through the package's entry point, as a user's script would.
    const make = sh(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { buildBackbone, getPreset, writeModel } from 'denoiserep';" +
          "writeModel('vit.onnx', buildBackbone(getPreset('vit-tiny-fmnist'), 'eval', 0).b.build().model);",
      ],
      app,
    );
    assert.equal(make.status, 0, make.stderr);
    assert.ok(statSync(join(app, 'vit.onnx')).size > 3e6);

    const i = sh('npx', ['--no-install', 'denoiserep', 'inspect', 'vit.onnx', '--json'], app);
    assert.equal(i.status, 0, i.stderr);
    assert.equal(i.stderr, '');
    const info = JSON.parse(i.stdout) as { selected: number; flopsPerImage: number };
    assert.equal(info.selected, 26); // patch embedding, 6 x (qkv, proj, fc1, fc2), head
    assert.equal(info.flopsPerImage, 86_526_464);

    // A shipped backbone, found in the installed package and checked against its sha256.
    for (const entry of zooEntries(join(repo, 'zoo'), 'backbone')) {
      const z = sh('npx', ['--no-install', 'denoiserep', 'inspect', `zoo:${entry}`, '--json'], app);
      assert.equal(z.status, 0, z.stderr);
      assert.ok((JSON.parse(z.stdout) as { selected: number }).selected > 0, entry);
    }
    // A shipped U-Net draws images from the installed package.
    for (const entry of zooEntries(join(repo, 'zoo'), 'diffusion')) {
      const args = ['sample', `zoo:${entry}`, '--n', '2', '--steps', '2', '--out', 'u.png'];
      const u = sh('npx', ['--no-install', 'denoiserep', ...args, '--json', '--threads', '1'], app);
      assert.equal(u.status, 0, u.stderr);
      assert.equal((JSON.parse(u.stdout.trim().split('\n').at(-1)!) as { n: number }).n, 2);
    }

    // The embedded Fashion-MNIST subset is found inside the installed package.
    const e = sh(
      'npx',
      [
        '--no-install',
        'denoiserep',
        'eval',
        'vit.onnx',
        '--data',
        'embedded',
        '--json',
        '--threads',
        '1',
      ],
      app,
    );
    assert.equal(e.status, 0, e.stderr);
    const ev = JSON.parse(e.stdout) as { images: number; acc1: number };
    assert.equal(ev.images, 2000);
    assert.ok(ev.acc1 >= 0 && ev.acc1 <= 100, `acc1 is in percent: ${ev.acc1}`);

    // The exports map's types resolve: a strict TypeScript consumer type-checks, and a
    // wrong use of the API is caught (so the types are real, not `any`).
    writeFileSync(
      join(app, 'ok.ts'),
      "import { readModel, type Model } from 'denoiserep';\nexport const m: Promise<Model> = readModel('vit.onnx');\n",
    );
    writeFileSync(
      join(app, 'bad.ts'),
      "import { readModel } from 'denoiserep';\nexport const n: number = readModel('vit.onnx');\n",
    );
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const flags = [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--skipLibCheck',
    ];
    const ok = sh(process.execPath, [tsc, ...flags, 'ok.ts'], app);
    assert.equal(ok.status, 0, ok.stdout);
    const bad = sh(process.execPath, [tsc, ...flags, 'bad.ts'], app);
    assert.notEqual(bad.status, 0);
    assert.match(
      bad.stdout,
      /bad\.ts.*TS2322: Type 'Promise<Model>' is not assignable to type 'number'/,
    );
  });
});

describe('inside the clone', () => {
  test('npx denoiserep prints no npm warning (no unknown .npmrc key)', () => {
    const r = sh('npx', ['--no-install', 'denoiserep', '--version'], repo);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });
});
