export * from './ir.js';
export * from './tensor.js';
export * from './dtype.js';
export * from './serialize.js';
export * from './validate.js';
export * from './limits.js';
