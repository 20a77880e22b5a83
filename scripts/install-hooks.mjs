#!/usr/bin/env node
// Points git at the project's hooks (.githooks/: a formatting check before each commit).
// Run by `npm install` and `npm ci` (the prepare script); not by `npm pack` or `npm publish`,
// which run prepare too. Does nothing outside a git checkout of this project (an installed
// package, a tarball, a parent repository that merely contains it), and leaves alone a
// core.hooksPath that someone set to something else.
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

const npmCommand = process.env.npm_command;
if (npmCommand && npmCommand !== 'install' && npmCommand !== 'ci') process.exit(0);
const git = (...args) => spawnSync('git', args, { encoding: 'utf8' });
const here = realpathSync(process.cwd());
const top = git('rev-parse', '--show-toplevel');
if (top.error || top.status !== 0 || !existsSync(join(here, '.githooks', 'pre-commit'))) {
  process.exit(0);
}
if (realpathSync(top.stdout.trim()) !== here) process.exit(0);
const current = git('config', '--get', 'core.hooksPath').stdout.trim();
if (current === '.githooks') process.exit(0);
if (current !== '') {
  console.warn(`core.hooksPath is ${current}; not replacing it with .githooks`);
  process.exit(0);
}
const set = git('config', 'core.hooksPath', '.githooks');
if (set.status !== 0) console.warn(`could not set core.hooksPath: ${set.stderr.trim()}`);
