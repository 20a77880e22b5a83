import type { GradRule } from '../types.js';
import { reshapeBack } from './shape-back.js';

/** Unsqueeze only rearranges the view: dx = dy reshaped to x's shape. */
export const unsqueezeGrad: GradRule = {
  opType: 'Unsqueeze',
  grad: (ctx) => [reshapeBack(ctx)],
};
