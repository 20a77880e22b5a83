#!/usr/bin/env node
// `prettier --check` on what is about to be committed: the staged version of every added,
// copied, modified or renamed file (not the working copy, which may differ). Files that
// Prettier ignores (.prettierignore) or has no parser for are skipped. Run by the git
// pre-commit hook (.githooks/pre-commit); exits 1 and names the files when any would change.
import { spawnSync } from 'node:child_process';
import * as prettier from 'prettier';

function git(...args) {
  const r = spawnSync('git', args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

const staged = git('diff', '--cached', '--name-only', '--diff-filter=ACMR', '-z')
  .split('\0')
  .filter(Boolean);
const unformatted = [];
for (const file of staged) {
  const info = await prettier.getFileInfo(file, { ignorePath: '.prettierignore' });
  if (info.ignored || !info.inferredParser) continue;
  const text = git('show', `:${file}`);
  const options = (await prettier.resolveConfig(file)) ?? {};
  if (!(await prettier.check(text, { ...options, filepath: file }))) unformatted.push(file);
}
if (unformatted.length > 0) {
  console.error(`Prettier would reformat ${unformatted.length} staged file(s):`);
  for (const f of unformatted) console.error(`  ${f}`);
  console.error(`Run: npx prettier --write ${unformatted.join(' ')} && git add -u`);
  process.exit(1);
}
