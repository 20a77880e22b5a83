export * from './session.js';
export * from './session-cache.js';
export * from './measure-shapes.js';
