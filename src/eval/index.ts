export * from './classification.js';
export * from './flops.js';
export * from './retrieval.js';
