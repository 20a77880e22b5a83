import type { GradRule } from '../types.js';
import { reshapeBack } from './shape-back.js';

/** Reshape only rearranges the view: dx = dy reshaped to x's shape. */
export const reshapeGrad: GradRule = {
  opType: 'Reshape',
  grad: (ctx) => [reshapeBack(ctx)],
};
