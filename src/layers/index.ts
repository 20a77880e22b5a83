// The layer helpers, by name: what the package entry exports as the `layers` namespace.
export { silu } from './activation.js';
export { attention } from './attention.js';
export { attentionPool } from './attention-pool.js';
export { layerContext, type LayerContext } from './context.js';
export { conv2d, convBn, type Conv2dOptions } from './conv.js';
export { dropout, dropoutFeeds } from './dropout.js';
export { groupNorm } from './group-norm.js';
export { linear, type LinearOptions } from './linear.js';
export { mlp } from './mlp.js';
export { batchNorm, layerNorm } from './norm.js';
export { patchEmbed } from './patch-embed.js';
export { upsampleNearest } from './resample.js';
export { sinusoidalEmbedding } from './time-embed.js';
