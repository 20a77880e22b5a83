export * from './features.js';
export * from './frechet.js';
export * from './load.js';
export * from './objective.js';
export * from './sampler.js';
export * from './schedule.js';
