// The layer helpers, by name: what the package entry exports as the `layers` namespace.
export { attention } from './attention.js';
export { layerContext, type LayerContext } from './context.js';
export { conv2d, convBn, type Conv2dOptions } from './conv.js';
export { dropout, dropoutFeeds } from './dropout.js';
export { linear, type LinearOptions } from './linear.js';
export { mlp } from './mlp.js';
export { batchNorm, layerNorm } from './norm.js';
export { patchEmbed } from './patch-embed.js';
