export * from './session.js';
export * from './session-cache.js';
