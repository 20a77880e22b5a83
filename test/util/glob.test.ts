import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { globMatch, globMatcher } from '../../src/util/glob.js';

/** The reference semantics: the same glob as an anchored RegExp (fine for short patterns). */
function viaRegExp(glob: string, name: string): boolean {
  const body = glob
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`).test(name);
}

describe('globMatch', () => {
  it('matches stars, question marks and literals like the anchored RegExp', () => {
    const globs = [
      '*',
      '',
      'a',
      'a*',
      '*a',
      'a*b',
      '*.fc?',
      'blocks.*.mlp.*',
      '?',
      '??',
      'a*a*a',
      '*x*',
    ];
    const names = [
      '',
      'a',
      'b',
      'ab',
      'aab',
      'aXbYb',
      'blocks.0.mlp.fc1',
      'x.fc1',
      'x.fc12',
      'aaa',
      'xx',
    ];
    for (const g of globs)
      for (const n of names) assert.equal(globMatch(g, n), viaRegExp(g, n), `${g} ~ ${n}`);
  });

  it('treats regular-expression characters literally', () => {
    assert.ok(globMatch('a.b', 'a.b'));
    assert.ok(!globMatch('a.b', 'axb'));
    assert.ok(globMatch('(x)+[y]', '(x)+[y]'));
  });

  it('does not backtrack exponentially on many stars', () => {
    const glob = `${'*a'.repeat(17)}*b`;
    const name = 'a'.repeat(5000);
    // A backtracking matcher takes far longer than the test runner's timeout here.
    assert.equal(globMatch(glob, name), false);
    assert.equal(globMatch(glob, `${name}b`), true);
  });

  it('globMatcher is true when any glob matches', () => {
    const m = globMatcher(['head.*', '*.num_batches_tracked']);
    assert.ok(m('head.bias'));
    assert.ok(m('layer1.0.bn1.num_batches_tracked'));
    assert.ok(!m('blocks.0.norm1.weight'));
  });
});
