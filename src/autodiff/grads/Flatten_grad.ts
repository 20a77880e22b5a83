import type { GradRule } from '../types.js';
import { reshapeBack } from './shape-back.js';

/** Flatten only rearranges the view: dx = dy reshaped to x's shape. */
export const flattenGrad: GradRule = {
  opType: 'Flatten',
  grad: (ctx) => [reshapeBack(ctx)],
};
