// The library's public API: everything the CLI is built from. A model goes builder → IR →
// (DenoiseRep conversion) → training graph via autodiff → ONNX Runtime sessions →
// parameters updated in TypeScript → fusion → IR → .onnx.
export * from './util/errors.js';
export * from './onnx/index.js';
export { GraphBuilder, type Value, type Init, type BuiltModel } from './onnx/builder.js';
export { inferShapes, inferShapesDetailed } from './onnx/shapes.js';
export * from './runtime/index.js';
export * from './autodiff/index.js';
export * from './train/index.js';
export * as layers from './layers/index.js';
export * from './models/index.js';
export * from './models/weights.js';
export * from './io/safetensors.js';
export * from './denoise/index.js';
// The one-call API: `fit`, `verify`, `inspect`, `exportWeights` and `study` do what the
// commands of the same names do.
export * from './denoise/api/index.js';
export { checkOutputPaths, type FlagPath } from './util/output-paths.js';
export * from './data/index.js';
export * from './eval/index.js';
export * from './eval/evaluate.js';
export * from './eval/latency.js';
export { runDemo, demoSettings, type DemoSettings, type DemoResult } from './experiments/demo.js';
export {
  runStudy,
  studySettings,
  studyJson,
  STUDY_ARMS,
  type StudyArm,
  type StudyRun,
  type StudySettings,
} from './experiments/study.js';
export type { StudyResults } from './experiments/study-report.js';
export { study, type StudyOptions, type StudyReport } from './experiments/study-api.js';
export * from './diffusion/index.js';
export {
  ATTENTION_PROBE,
  backboneFeatures,
  featureNorm,
  LINEAR_PROBE,
  pixelFeatures,
  probeSweep,
  trainProbe,
  type LabelledFeatures,
  type ProbeConfig,
  type ProbeResult,
  type SweepCell,
} from './experiments/probe.js';
export { frechetReport, generateImages, type FrechetReport } from './experiments/generate.js';
export { heatmapSvg } from './experiments/heatmap.js';
export { imageGridPng } from './experiments/image-grid.js';
