// The fuzz harness (scripts/fuzz.ts) on 500 cases: every mutated fixture ends as a clean
// result or one of the tool's typed errors — no untyped error, no process death, none over
// 2 GB of memory or 30 s — and the same seed gives the same cases and outcomes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Summary {
  n: number;
  counts: Record<'ok' | 'typed' | 'untyped' | 'crash' | 'memory' | 'timeout', number>;
  typedAt: Record<'read' | 'measure' | 'flops' | 'plan', number>;
  examples: { i: number; outcome: string; steps: string[]; message?: string }[];
}

function fuzz(...args: string[]): Summary {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(repo, 'scripts', 'fuzz.ts'), '--json', ...args],
    { cwd: repo, encoding: 'utf8' },
  );
  assert.ok(r.status === 0 || r.status === 1, `fuzz exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Summary;
}

test('500 mutated models: 0 untyped errors, 0 deaths, 0 over 2 GB or 30 s', () => {
  const s = fuzz('--n', '500', '--seed', '1');
  const bad = s.examples.filter((e) => e.outcome !== 'ok' && e.outcome !== 'typed');
  assert.deepEqual(
    {
      untyped: s.counts.untyped,
      crash: s.counts.crash,
      memory: s.counts.memory,
      timeout: s.counts.timeout,
    },
    { untyped: 0, crash: 0, memory: 0, timeout: 0 },
    JSON.stringify(bad, null, 1),
  );
  assert.equal(s.counts.ok + s.counts.typed, 500);
  // The cases reach every step of the inspect path, not only the protobuf decoder.
  assert.ok(s.counts.ok > 0, 'some mutated models are still valid');
  for (const stage of ['read', 'measure'] as const)
    assert.ok(s.typedAt[stage] > 0, `some cases fail at '${stage}'`);
});

test('the same seed gives the same cases and outcomes', () => {
  const a = fuzz('--n', '25', '--from', '100', '--seed', '7');
  const b = fuzz('--n', '25', '--from', '100', '--seed', '7');
  assert.deepEqual(
    { counts: b.counts, typedAt: b.typedAt, examples: b.examples },
    { counts: a.counts, typedAt: a.typedAt, examples: a.examples },
  );
  const c = fuzz('--n', '25', '--from', '100', '--seed', '8');
  assert.notDeepEqual(c.examples, a.examples);
});
