import { attrString, type Dim } from '../ir.js';
import { broadcastShapes, type InferContext, registerShapeRule } from '../shape-inference.js';

/** One operand of an equation: its letters, with `...` at `ellipsis` (or -1). */
interface Term {
  letters: string[];
  ellipsis: number;
}

function parseTerm(ctx: InferContext, text: string): Term {
  const t = text.trim();
  const at = t.indexOf('...');
  if (at >= 0 && t.indexOf('...', at + 1) >= 0) ctx.fail(`'${t}' has two ellipses`);
  const bare = at >= 0 ? t.slice(0, at) + t.slice(at + 3) : t;
  if (!/^[A-Za-z]*$/.test(bare)) ctx.fail(`'${t}' is not a valid einsum term`);
  return { letters: [...bare], ellipsis: at >= 0 ? [...t.slice(0, at)].length : -1 };
}

/**
 * Einsum: the output shape from the equation (explicit `->` form, or the implicit form:
 * broadcast ellipsis dims, then the letters used once, in alphabetical order). A letter's
 * size is taken from any operand that fixes it; a size-1 operand dim broadcasts.
 */
registerShapeRule('Einsum', (ctx) => {
  const eq = attrString(ctx.node, 'equation');
  if (eq === undefined) return ctx.fail("missing attribute 'equation'");
  const ins = [...Array(ctx.inputCount).keys()].map((i) => ctx.required(i));
  const dtype = ins[0]?.dtype ?? ctx.fail('Einsum needs at least one input');
  const [lhs, rhs] = eq.includes('->') ? eq.split('->') : [eq, undefined];
  const terms = lhs.split(',').map((s) => parseTerm(ctx, s));
  if (terms.length !== ins.length)
    ctx.fail(`equation '${eq}' has ${terms.length} operands, the node ${ins.length} inputs`);
  const size = new Map<string, Dim>();
  const ellipses: (Dim[] | null)[] = [];
  let unknownRank = false;
  terms.forEach((t, i) => {
    const shape = ins[i]!.shape;
    if (!shape) {
      unknownRank = true;
      return;
    }
    const fixed = t.letters.length;
    if (t.ellipsis < 0 ? shape.length !== fixed : shape.length < fixed)
      ctx.fail(`operand ${i} '${[...t.letters].join('')}' does not fit its rank ${shape.length}`);
    const nEll = shape.length - fixed;
    const head = t.ellipsis < 0 ? fixed : t.ellipsis;
    if (t.ellipsis >= 0) ellipses.push(shape.slice(head, head + nEll));
    t.letters.forEach((l, k) => {
      const d = shape[k < head ? k : k + nEll]!;
      const prev = size.get(l);
      if (prev === undefined || prev === 1 || (prev === null && d !== 1)) size.set(l, d);
      else if (typeof prev === 'number' && typeof d === 'number' && d !== 1 && d !== prev)
        ctx.fail(`letter '${l}' is ${prev} in one operand and ${d} in another`);
    });
  });
  let outTerm: Term;
  if (rhs !== undefined) outTerm = parseTerm(ctx, rhs);
  else {
    const count = new Map<string, number>();
    for (const t of terms) for (const l of t.letters) count.set(l, (count.get(l) ?? 0) + 1);
    const once = [...count].filter(([, n]) => n === 1).map(([l]) => l);
    // Implicit output order: upper-case letters sort before lower-case (ASCII).
    once.sort();
    outTerm = { letters: once, ellipsis: terms.some((t) => t.ellipsis >= 0) ? 0 : -1 };
  }
  for (const l of outTerm.letters)
    if (!size.has(l) && !unknownRank) ctx.fail(`output letter '${l}' is in no operand`);
  if (unknownRank) return [{ name: '', dtype, shape: null }];
  const ell = ellipses.length ? broadcastShapes(ctx, ellipses) : [];
  const letters = outTerm.letters.map((l) => size.get(l) ?? null);
  const shape =
    outTerm.ellipsis < 0
      ? letters
      : [...letters.slice(0, outTerm.ellipsis), ...(ell ?? []), ...letters.slice(outTerm.ellipsis)];
  return [{ name: '', dtype, shape: ell === null ? null : shape }];
});
