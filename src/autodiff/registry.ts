import { ALL_GRAD_RULES, NO_GRADIENT_OPS } from './grads/index.js';
import type { GradRule } from './types.js';

const rules = new Map<string, GradRule>();
for (const r of ALL_GRAD_RULES) {
  if (rules.has(r.opType)) throw new Error(`two gradient rules for ${r.opType}`);
  rules.set(r.opType, r);
}
const noGrad = new Set<string>(NO_GRADIENT_OPS);

/** The gradient rule of an op type, if any. */
export function gradientRule(opType: string): GradRule | undefined {
  return rules.get(opType);
}

/** True for ops marked non-differentiable (integer, shape and comparison paths). */
export function isNonDifferentiable(opType: string): boolean {
  return noGrad.has(opType);
}

/** Every op type with a gradient rule. */
export function differentiableOps(): string[] {
  return [...rules.keys()].sort();
}

/** Every op type marked non-differentiable. */
export function nonDifferentiableOps(): string[] {
  return [...noGrad].sort();
}
