// Atomic writes: the target is replaced whole or not at all, and no temporary file stays.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { writeFileAtomic, writeJsonAtomic } from '../../src/util/atomic-write.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'denoiserep-atomic-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  test('creates a file, then replaces a longer one whole (no tail of the old contents)', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'replace-'));
    const file = path.join(dir, 'a.bin');
    writeFileAtomic(file, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    assert.deepEqual([...fs.readFileSync(file)], [1, 2, 3, 4, 5, 6, 7, 8]);
    writeFileAtomic(file, Uint8Array.from([9, 9]));
    assert.deepEqual([...fs.readFileSync(file)], [9, 9]);
    writeFileAtomic(file, 'héllo');
    assert.equal(fs.readFileSync(file, 'utf8'), 'héllo');
    assert.deepEqual(fs.readdirSync(dir), ['a.bin']);
  });

  test('writes exactly the bytes of a view into a larger buffer', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'view-'));
    const file = path.join(dir, 'v.bin');
    const big = Uint8Array.from({ length: 10 }, (_, i) => i * 10);
    writeFileAtomic(file, big.subarray(3, 6));
    assert.deepEqual([...fs.readFileSync(file)], [30, 40, 50]);
  });

  test('a missing target folder fails, creating nothing', () => {
    const missing = path.join(tmp, 'no-such-dir');
    assert.throws(() => writeFileAtomic(path.join(missing, 'x.bin'), 'data'), /ENOENT/);
    assert.equal(fs.existsSync(missing), false);
  });

  test('a failed rename leaves the target untouched and removes the temporary file', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'rename-fail-'));
    // A non-empty folder cannot be replaced by a file: the rename fails after the write.
    const target = path.join(dir, 'out');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep.txt'), 'keep');
    assert.throws(() => writeFileAtomic(target, 'new contents'));
    assert.deepEqual(fs.readdirSync(dir), ['out']);
    assert.equal(fs.readFileSync(path.join(target, 'keep.txt'), 'utf8'), 'keep');
  });

  test('repeated writes use fresh temporary names and leave only the target', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'many-'));
    const file = path.join(dir, 'n.txt');
    for (let i = 0; i < 20; i++) writeFileAtomic(file, String(i));
    assert.equal(fs.readFileSync(file, 'utf8'), '19');
    assert.deepEqual(fs.readdirSync(dir), ['n.txt']);
  });

  test("a killed writer's temporary files are removed at the next write; a live writer's stay", () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'stale-'));
    // The id of a process that has exited: its temporary files can never be renamed.
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], {
      encoding: 'utf8',
    });
    const pid = Number(dead.stdout.trim());
    const stale = [`.m.onnx.${pid}.0.3.tmp`, `.m.onnx.${pid}.0.4.tmp`];
    const live = `.m.onnx.${process.pid}.0.999999.tmp`;
    const other = [`.n.onnx.${pid}.0.1.tmp`, `m.onnx.${pid}.0.1.tmp`, `.m.onnx.${pid}.tmp`];
    for (const f of [...stale, live, ...other]) fs.writeFileSync(path.join(dir, f), 'partial');
    writeFileAtomic(path.join(dir, 'm.onnx'), 'model');
    // Only the stale files of this target, in this module's exact pattern, are gone.
    assert.deepEqual(fs.readdirSync(dir).sort(), [live, ...other, 'm.onnx'].sort());
  });
});

describe('writeJsonAtomic', () => {
  test('writes JSON that parses back equal, ending in a newline', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'json-'));
    const file = path.join(dir, 'r.json');
    fs.writeFileSync(file, 'old, not JSON, and longer than the new contents '.repeat(10));
    const obj = { acc: 0.5, runs: [1, 2], name: 'ü', nested: { ok: true, none: null } };
    writeJsonAtomic(file, obj);
    const text = fs.readFileSync(file, 'utf8');
    assert.ok(text.endsWith('}\n'));
    assert.deepEqual(JSON.parse(text), obj);
    assert.deepEqual(fs.readdirSync(dir), ['r.json']);
  });
});
