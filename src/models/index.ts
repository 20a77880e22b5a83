export * from './head.js';
export * from './mlp.js';
export * from './registry.js';
export * from './resnet.js';
export * from './types.js';
export * from './vit.js';
export * from './zoo.js';
