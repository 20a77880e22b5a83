// The rule every command applies before any work: no output is one of its inputs or
// another output (same real path, or same inode: symlinks and hard links count), and
// every output's folder exists.
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { UsageError } from '../../src/util/errors.js';
import { checkOutputPaths } from '../../src/util/output-paths.js';

const dir = mkdtempSync(join(tmpdir(), 'denoiserep-paths-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const m = join(dir, 'm.onnx');
writeFileSync(m, 'model');
const input = [{ flag: '<model>', path: m }];

function refused(outputs: { flag: string; path: string }[], pattern: RegExp): void {
  assert.throws(
    () => checkOutputPaths(input, outputs),
    (e) => e instanceof UsageError && pattern.test(e.message),
  );
}

describe('checkOutputPaths', () => {
  test('distinct new and existing files pass', () => {
    writeFileSync(join(dir, 'old.onnx'), 'old');
    checkOutputPaths(input, [
      { flag: '--out', path: join(dir, 'old.onnx') },
      { flag: '--report', path: join(dir, 'new.json') },
    ]);
  });

  test('an output that is the input, by name, by symlink or by hard link, is refused naming both', () => {
    refused([{ flag: '--out', path: m }], /^--out .*m\.onnx is the same file as <model> .*m\.onnx/);
    // The same file through a relative path with a detour.
    refused(
      [{ flag: '--denoisers-out', path: join(dir, '..', dir.split('/').pop()!, 'm.onnx') }],
      /--denoisers-out .* <model>/,
    );
    symlinkSync(m, join(dir, 'sym.onnx'));
    refused([{ flag: '--out', path: join(dir, 'sym.onnx') }], /--out .*sym\.onnx .* <model>/);
    linkSync(m, join(dir, 'hard.onnx'));
    refused([{ flag: '--out', path: join(dir, 'hard.onnx') }], /--out .*hard\.onnx .* <model>/);
  });

  test('two outputs on one file are refused, also a new file reached through a linked folder', () => {
    refused(
      [
        { flag: '--out', path: join(dir, 'o.onnx') },
        { flag: '--denoisers-out', path: join(dir, 'o.onnx') },
      ],
      /^--out .*o\.onnx and --denoisers-out .*o\.onnx are the same file/,
    );
    mkdirSync(join(dir, 'a'));
    symlinkSync(join(dir, 'a'), join(dir, 'b'));
    refused(
      [
        { flag: '--stats-out', path: join(dir, 'a', 'x.bin') },
        { flag: '--report', path: join(dir, 'b', 'x.bin') },
      ],
      /--stats-out .* and --report .* are the same file/,
    );
  });

  test('a missing output folder, or an output that is a folder, is refused naming the flag', () => {
    refused(
      [{ flag: '--out', path: join(dir, 'nope', 'f.onnx') }],
      /^--out .*: folder .*nope does not exist/,
    );
    refused([{ flag: '--graph-out', path: join(dir, 'a') }], /^--graph-out .*a is a folder/);
    // A file where the folder should be.
    refused([{ flag: '--out', path: join(m, 'f.onnx') }], /folder .*m\.onnx does not exist/);
  });
});
