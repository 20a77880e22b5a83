export * from './attention.js';
export * from './context.js';
export * from './conv.js';
export * from './dropout.js';
export * from './linear.js';
export * from './mlp.js';
export * from './norm.js';
export * from './patch-embed.js';
