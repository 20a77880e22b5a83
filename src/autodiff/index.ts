export * from './engine.js';
export * from './registry.js';
export * from './types.js';
