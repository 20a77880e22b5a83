#!/usr/bin/env node
// Runs the test files (test/**/*.test.ts) with Node's built-in test runner, TypeScript loaded
// by tsx. All selected files run in ONE Node process (scripts/test-entry.mjs imports each
// inside a suite named after the file): tsx and onnxruntime start once instead of once per
// file, which was most of the suite's time.
//
// Usage: node scripts/run-tests.mjs [--unit | --e2e] [--isolate] [--test-...] [substring filter ...]
//   --unit     only the fast tests (everything but the end-to-end files, see isE2e below)
//   --e2e      only the end-to-end tests (spawned CLIs, the demo, large presets)
//   --isolate  one process per file (`node --test`), to rule out interference between files
//   --test-... passed to Node's test runner (e.g. --test-name-pattern=resume)
// The closing summary is the spec reporter's (`ℹ tests N`, `ℹ pass N`, `ℹ fail N`).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * End-to-end test files are named `*.e2e.test.ts`: they spawn the CLI, Chromium or npm, run
 * the demo or the study end to end, or load full-size models, and take most of the suite's
 * time. Everything else is a unit test, wherever it sits.
 */
const isE2e = (f) => f.endsWith('.e2e.test.ts');

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'fixtures') out.push(...walk(p));
    } else if (name.endsWith('.test.ts')) out.push(p.split('\\').join('/'));
  }
  return out;
}

const args = process.argv.slice(2);
const passed = args.filter((a) => a.startsWith('--test-'));
const flags = new Set(args.filter((a) => a.startsWith('--') && !a.startsWith('--test-')));
for (const f of flags) {
  if (!['--unit', '--e2e', '--isolate'].includes(f)) {
    console.error(`unknown option ${f} (use --unit, --e2e, --isolate)`);
    process.exit(1);
  }
}
const filters = args.filter((a) => !a.startsWith('--'));
const files = walk('test')
  .filter((f) => !flags.has('--unit') || !isE2e(f))
  .filter((f) => !flags.has('--e2e') || isE2e(f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(`no test files match ${[...flags, ...filters].join(' ')}`);
  process.exit(1);
}
// Two reporters: the spec report on stdout, and the failure count in a file (see
// scripts/test-status-reporter.mjs), which decides the exit code.
const status = join(tmpdir(), `denoiserep-test-status-${process.pid}.json`);
const reporters = [
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/test-status-reporter.mjs',
  `--test-reporter-destination=${status}`,
];
const node = flags.has('--isolate')
  ? ['--import', 'tsx', '--test', '--test-concurrency=1', ...reporters, ...passed, ...files]
  : ['--import', 'tsx', ...reporters, ...passed, 'scripts/test-entry.mjs', ...files];
const r = spawnSync(process.execPath, node, { stdio: 'inherit' });
const failed = existsSync(status) ? JSON.parse(readFileSync(status, 'utf8')).failed : undefined;
rmSync(status, { force: true });
if (failed === undefined) console.error('the test run ended before reporting its results');
process.exit(failed === 0 ? (r.status ?? 1) : 1);
