export * from './closed-form.js';
export * from './denoiser-file.js';
export * from './diagnostics.js';
export * from './diagnostics-math.js';
export * from './export-weights.js';
export * from './fit.js';
export * from './fuse.js';
export * from './fuse-math.js';
export * from './graph.js';
export * from './pipeline.js';
export * from './plan.js';
export * from './routes.js';
export * from './schedule.js';
export * from './select.js';
export * from './tilde.js';
export * from './train.js';
export * from './verify.js';
export {
  type CompiledOptions,
  DenseKernels,
  type GemmOptions,
  matmulCompiled,
  spdInverseCompiled,
  symmetricEigenvaluesCompiled,
} from './linalg-compiled.js';
