export * from './checkpoint.js';
export * from './loop.js';
export * from './losses.js';
export * from './optim.js';
export * from './params.js';
export * from '../util/rng.js';
export * from './schedule.js';
export * from './step.js';
