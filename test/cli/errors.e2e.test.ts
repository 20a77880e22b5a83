// The CLI's promises about failure, checked by spawning every command as a user runs it:
// an error is one line on stderr, and the exit code says whose fault it is (1 bad usage,
// 2 bad data or model, a missing or unreadable file included, 3 internal). And `--help`
// is clean: no `(default: false)` after switches, never two defaults for one option.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertVerified } from '../../src/cli/common.js';
import { describeError, EXIT } from '../../src/cli/index.js';
import { buildBackbone, getPreset } from '../../src/models/registry.js';
import { writeModel } from '../../src/onnx/serialize.js';
import { DataError, ModelError, UsageError } from '../../src/util/errors.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(repo, 'src', 'cli', 'index.ts');
const tsx = import.meta.resolve('tsx');
const dir = mkdtempSync(join(tmpdir(), 'denoiserep-errors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  args: string[];
  code: number | null;
  out: string;
  err: string;
}

function run(args: string[]): Promise<Result> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, ['--import', tsx, cli, ...args], { cwd: dir });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', fail);
    p.on('close', (code) => done({ args, code, out, err }));
  });
}

/** Spawns every case, a few at a time (each child spends most of its time starting up). */
async function runAll(cases: string[][], parallel = 4): Promise<Result[]> {
  const results: Result[] = new Array<Result>(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      results[i] = await run(cases[i]!);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return results;
}

function assertOneLine(r: Result, code: number, names: RegExp): void {
  const what = `denoiserep ${r.args.join(' ')}`;
  assert.equal(r.code, code, `${what}: exit ${r.code}, stderr: ${r.err}`);
  const lines = r.err.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `${what}: stderr has ${lines.length} lines:\n${r.err}`);
  assert.match(lines[0]!, /^denoiserep: /, what);
  assert.match(lines[0]!, names, what);
  assert.equal(r.out, '', `${what}: printed to stdout on error`);
}

const model = join(dir, 'vit.onnx');
const corrupt = join(dir, 'corrupt.onnx');
const missing = join(dir, 'missing.onnx');
const notAFolder = join(dir, 'plain-file');

before(() => {
  writeModel(
    model,
    buildBackbone(getPreset('vit-micro', { numClasses: 3 }), 'eval', 0).b.build().model,
  );
  // Bytes that are not a protobuf message: what a truncated download or a wrong file gives.
  writeFileSync(corrupt, Buffer.from([0x0f, 0xff, 0x07, 0x00, 0x13, 0x37]));
  writeFileSync(notAFolder, 'not a folder');
  writeFileSync(join(dir, 'corrupt.safetensors'), 'not safetensors');
  mkdirSync(join(dir, 'ckpt'));
  writeFileSync(join(dir, 'ckpt', 'state.json'), '{ truncated');
  mkdirSync(join(dir, 'idx'));
  for (const split of ['train', 't10k'])
    for (const f of ['images-idx3', 'labels-idx1'])
      writeFileSync(join(dir, 'idx', `${split}-${f}-ubyte.gz`), 'not gzip');
});

// The arguments each command needs to get past parsing, so that a bad flag is the only fault.
const valid: Record<string, string[]> = {
  demo: ['--quick', '--out', join(dir, 'runs')],
  pretrain: ['--model', 'mlp-fmnist', '--out', join(dir, 'pt')],
  eval: [model],
  inspect: [model],
  convert: [model, '--out', join(dir, 'd.safetensors')],
  fit: [model, '--data', 'embedded', '--out', join(dir, 'fused.onnx')],
  finetune: [join(dir, 'ckpt'), '--out', join(dir, 'ft')],
  fuse: [model, '--denoisers', join(dir, 'd.safetensors'), '--out', join(dir, 'f.onnx')],
  verify: [model, '--fused', model, '--denoisers', join(dir, 'd.safetensors')],
};
const commands = Object.keys(valid);

describe('every command: a bad flag is one line and exit code 1', () => {
  test('an unknown flag and a bad flag value, for each command', async () => {
    const cases = commands.flatMap((c) => [
      [c, ...valid[c]!, '--frobnicate'],
      [c, ...valid[c]!, '--seed', 'minus-one'],
    ]);
    const results = await runAll(cases);
    for (let i = 0; i < results.length; i += 2) {
      assertOneLine(results[i]!, EXIT.usage, /unknown option '--frobnicate'/);
      assertOneLine(
        results[i + 1]!,
        EXIT.usage,
        /--seed must be an integer in \[0, 2\^53-1\], got 'minus-one'/,
      );
    }
  });

  test('an unknown command, a missing argument, a missing required flag', async () => {
    const [cmd, arg, flag] = await runAll([['fitt'], ['inspect'], ['fuse', model]]);
    assertOneLine(cmd!, EXIT.usage, /unknown command 'fitt' \(Did you mean fit\?\)/);
    assertOneLine(arg!, EXIT.usage, /missing required argument 'model'/);
    assertOneLine(flag!, EXIT.usage, /required option '--denoisers <file>' not specified/);
  });
});

describe('every command: a missing or corrupt file is one line and exit code 2', () => {
  test('models, checkpoints, denoisers, data and folders that are missing or corrupt', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['pretrain', '--model', 'mlp-fmnist', '--data', join(dir, 'nothing'), '--out', 'x'],
        /nothing/,
      ],
      [
        ['pretrain', '--model', 'mlp-fmnist', '--data', join(dir, 'idx'), '--out', 'x'],
        /t10k-images-idx3-ubyte\.gz: not an IDX file/,
      ],
      [['eval', missing], /missing\.onnx/],
      [['eval', corrupt], /corrupt\.onnx: not a valid ONNX file/],
      [['inspect', missing], /missing\.onnx/],
      [['inspect', corrupt], /corrupt\.onnx: not a valid ONNX file/],
      [['convert', corrupt, '--out', join(dir, 'c.safetensors')], /corrupt\.onnx/],
      [['fit', missing, '--data', 'embedded', '--out', join(dir, 'a.onnx')], /missing\.onnx/],
      [
        ['fit', model, '--images', join(dir, 'no-images'), '--out', join(dir, 'b.onnx')],
        /no-images/,
      ],
      [['finetune', join(dir, 'no-checkpoint'), '--out', join(dir, 'ft')], /no-checkpoint/],
      [['finetune', join(dir, 'ckpt'), '--out', join(dir, 'ft')], /ckpt/],
      [
        [
          'fuse',
          model,
          '--denoisers',
          join(dir, 'corrupt.safetensors'),
          '--out',
          join(dir, 'c.onnx'),
        ],
        /corrupt\.safetensors/,
      ],
      [
        ['fuse', model, '--denoisers', join(dir, 'none.safetensors'), '--out', join(dir, 'c.onnx')],
        /none\.safetensors/,
      ],
      [
        ['verify', model, '--fused', missing, '--denoisers', join(dir, 'corrupt.safetensors')],
        /missing\.onnx/,
      ],
    ];
    // The demo reads no file of the user's: its one path is the runs folder, an output,
    // and a plain file in its place is bad usage (exit 1).
    const demo = ['demo', '--quick', '--out', notAFolder, '--threads', '1'];
    const results = await runAll([...cases.map(([a]) => a), demo]);
    cases.forEach(([, names], i) => assertOneLine(results[i]!, EXIT.data, names));
    assertOneLine(results.at(-1)!, EXIT.usage, /--out .*plain-file is a file/);
    // Every command is covered.
    assert.deepEqual(
      [...new Set([...cases.map(([a]) => a[0]), 'demo'])].sort(),
      [...commands].sort(),
    );
  });
});

describe('exit codes and one-line messages, in process', () => {
  test('typed errors map to 1 and 2, file-system errors on a path to 2, anything else to 3', () => {
    assert.deepEqual(describeError(new UsageError('--x is bad')), {
      line: 'denoiserep: --x is bad',
      code: 1,
    });
    assert.equal(describeError(new ModelError('m.onnx: bad')).code, 2);
    assert.equal(
      describeError(new DataError('a\n  multi-line\nmessage')).line,
      'denoiserep: a multi-line message',
    );
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open 'x.bin'"), {
      code: 'ENOENT',
      path: 'x.bin',
    });
    assert.equal(describeError(enoent).code, 2);
    const bug = describeError(new TypeError("Cannot read properties of undefined (reading 'x')"));
    assert.equal(bug.code, 3);
    assert.match(bug.line, /^denoiserep: internal error: Cannot read properties/);
    assert.equal(describeError('a thrown string').code, 3);
  });

  test('a failed verification ends the command with a DataError (exit 2) naming the model', () => {
    assert.doesNotThrow(() => assertVerified([{ name: 'label-free (seed 0)', ok: true }]));
    assert.throws(
      () =>
        assertVerified([
          { name: 'label-free (seed 0)', ok: true },
          { name: 'label-aug (seed 1)', ok: false },
        ]),
      (e: unknown) =>
        e instanceof DataError &&
        /^verification failed: label-aug \(seed 1\) \(see/.test(e.message),
    );
  });
});

describe('internal errors', () => {
  test('a command that cannot start (dist/ not built) says so in one line, exit code 3', () => {
    mkdirSync(join(dir, 'pkg', 'bin'), { recursive: true });
    copyFileSync(join(repo, 'bin', 'denoiserep.js'), join(dir, 'pkg', 'bin', 'denoiserep.js'));
    const r = spawnSync(process.execPath, [join(dir, 'pkg', 'bin', 'denoiserep.js'), '--help'], {
      encoding: 'utf8',
    });
    assertOneLine(
      { args: ['--help'], code: r.status, out: r.stdout, err: r.stderr },
      EXIT.internal,
      /^denoiserep: internal error: dist\/ is not built \(run npm run build\)$/,
    );
  });
});

describe('the command on Linux', { skip: process.platform !== 'linux' }, () => {
  test("restarts once with large freed buffers given back to the system, keeping the caller's setting", () => {
    mkdirSync(join(dir, 'pkg', 'bin'), { recursive: true });
    copyFileSync(join(repo, 'bin', 'denoiserep.js'), join(dir, 'pkg', 'bin', 'denoiserep.js'));
    // A preload that both processes run (it travels in execArgv) and that shows their setting.
    const probe = join(dir, 'probe.cjs');
    writeFileSync(
      probe,
      'process.stderr.write(`threshold=${process.env.MALLOC_MMAP_THRESHOLD_}\\n`);\n',
    );
    const run = (threshold?: string) => {
      const env = { ...process.env };
      delete env.MALLOC_MMAP_THRESHOLD_;
      if (threshold !== undefined) env.MALLOC_MMAP_THRESHOLD_ = threshold;
      return spawnSync(
        process.execPath,
        ['--require', probe, join(dir, 'pkg', 'bin', 'denoiserep.js'), '--help'],
        { encoding: 'utf8', env },
      );
    };
    const r = run();
    // The restart fails as the command without dist/ does (exit 3), and the first process
    // ends with that code.
    assert.equal(r.status, EXIT.internal);
    assert.deepEqual(r.stderr.match(/threshold=\S+/g), [
      'threshold=undefined',
      'threshold=1048576',
    ]);
    assert.match(r.stderr, /dist\/ is not built/);
    // The caller's own setting is kept: no restart.
    const mine = run('134217728');
    assert.deepEqual(mine.stderr.match(/threshold=\S+/g), ['threshold=134217728']);
    assert.equal(mine.status, EXIT.internal);
  });
});

describe('help', () => {
  test('--help of every command: exit 0, defaults shown once, none after switches', async () => {
    const results = await runAll([['--help'], ...commands.map((c) => [c, '--help'])]);
    for (const r of results) {
      assert.equal(r.code, 0, r.err);
      assert.equal(r.err, '');
      // Commander wraps long descriptions; join them back to one line per option.
      const text = r.out.replace(/\n {20,}/g, ' ');
      assert.doesNotMatch(text, /\(default: false\)/, r.args.join(' '));
      for (const line of text.split('\n'))
        assert.ok((line.match(/default/g) ?? []).length <= 1, `${r.args.join(' ')}: ${line}`);
    }
    const fit = results[1 + commands.indexOf('fit')]!.out.replace(/\n {20,}/g, ' ');
    assert.match(
      fit,
      /--threads <n> +ONNX Runtime intra-op threads \(integer in \[1, \d+\]; default: every core\)\n/,
    );
    assert.match(
      fit,
      /--layers <filter> +layers: all, mlp, linear, conv, or globs \(default: all\)/,
    );
  });
});
