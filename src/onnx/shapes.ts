// Shape inference with every rule registered: import shape inference from here.
import './shape-rules/index.js';

export * from './shape-inference.js';
