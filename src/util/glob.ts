/**
 * Globs over dotted names: `*` matches any run of characters (dots included), `?` exactly
 * one character, everything else itself.
 *
 * Matching is linear in pattern length × name length (the classic two-pointer wildcard
 * algorithm with one backtrack point), so a pattern of many stars cannot take exponential
 * time the way a RegExp like `^.*.*.*x$` can.
 */

/**
 * True when `name` matches the whole of `glob`.
 * @param glob - the pattern (`blocks.*.mlp.fc?`)
 * @param name - the name to test (`blocks.3.mlp.fc1`)
 * @example
 * globMatch('head.*', 'head.weight'); // true
 * globMatch('blocks.?.mlp.*', 'blocks.10.mlp.fc1'); // false
 */
export function globMatch(glob: string, name: string): boolean {
  let g = 0;
  let n = 0;
  let star = -1; // position in glob just after the last '*'
  let mark = 0; // position in name where that '*' started matching
  while (n < name.length) {
    const c = glob[g];
    if (c === '*') {
      star = ++g;
      mark = n;
    } else if (c !== undefined && (c === '?' || c === name[n])) {
      g++;
      n++;
    } else if (star >= 0) {
      // Let the last star absorb one more character and retry from there.
      g = star;
      n = ++mark;
    } else return false;
  }
  while (glob[g] === '*') g++;
  return g === glob.length;
}

/**
 * A predicate that is true when a name matches any of the globs.
 * @example
 * const ignored = globMatcher(['head.*', '*.num_batches_tracked']);
 * ignored('head.bias'); // true
 */
export function globMatcher(globs: readonly string[]): (name: string) => boolean {
  const list = [...globs];
  return (name) => list.some((g) => globMatch(g, name));
}
