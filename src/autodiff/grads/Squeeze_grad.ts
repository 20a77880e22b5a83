import type { GradRule } from '../types.js';
import { reshapeBack } from './shape-back.js';

/** Squeeze only rearranges the view: dx = dy reshaped to x's shape. */
export const squeezeGrad: GradRule = {
  opType: 'Squeeze',
  grad: (ctx) => [reshapeBack(ctx)],
};
