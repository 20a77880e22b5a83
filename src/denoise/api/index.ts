// The one-call API: what each command does, as a function taking the command's options.
export {
  fit,
  type FitOptions,
  type FitReport,
  type FitShardOptions,
  type FitVerification,
  type Shard,
  type StatisticsReport,
} from './fit.js';
export {
  exportWeights,
  type ExportWeightsCallOptions,
  type ExportWeightsReport,
} from './export-weights.js';
export type { CommonOptions, ImageOptions } from './options.js';
export {
  inspect,
  type InspectOptions,
  type InspectReport,
  verify,
  type VerifyModelOptions,
} from './verify.js';
