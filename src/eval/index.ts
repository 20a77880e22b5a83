export * from './classification.js';
export * from './flops.js';
export * from './retrieval.js';
export * from './robustness.js';
export * from './statistics.js';
