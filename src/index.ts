// The library's public API, listed by name: what `import ... from 'denoiserep'` gives.
// README.md's "API" section documents the same list, and test/index.test.ts checks that the
// two agree. A model goes builder → IR → (DenoiseRep conversion) → training graph via
// autodiff → ONNX Runtime sessions → parameters updated in TypeScript → fusion → IR → .onnx.
// Everything else in src/ is internal: import it from its module inside the project only.
import * as layers from './layers/index.js';

// The one-call API: fit, verify, inspect, exportWeights and study do what the commands of
// the same names do
export {
  fit,
  type FitOptions,
  type FitReport,
  type FitShardOptions,
  type FitVerification,
  type Shard,
  type StatisticsReport,
} from './denoise/api/fit.js';
export {
  inspect,
  verify,
  type InspectOptions,
  type InspectReport,
  type VerifyModelOptions,
} from './denoise/api/verify.js';
export {
  exportWeights,
  type ExportWeightsCallOptions,
  type ExportWeightsReport,
} from './denoise/api/export-weights.js';
export type { CommonOptions, ImageOptions } from './denoise/api/options.js';
export { study, type StudyOptions, type StudyReport } from './experiments/study-api.js';
export { checkOutputPaths, type FlagPath } from './util/output-paths.js';

// Errors and random numbers
export {
  DataError,
  DenoiseRepError,
  exitCodeFor,
  FeedError,
  GradientError,
  ModelError,
  UsageError,
  type ErrorKind,
} from './util/errors.js';
export { Rng } from './util/rng.js';

// ONNX models: read and write, tensors, the graph builder, shapes and checks
export {
  decodeModel,
  encodeModel,
  readModel,
  writeModel,
  type DecodeOptions,
} from './onnx/serialize.js';
export type { AttrValue, Dim, Graph, Model, Node, ValueInfo } from './onnx/ir.js';
export { float32, int64, makeTensor, numel, type Tensor } from './onnx/tensor.js';
export type { DType, TensorArray } from './onnx/dtype.js';
export { GraphBuilder, type BuiltModel, type Init, type Value } from './onnx/builder.js';
export { inferShapes, inferShapesDetailed } from './onnx/shapes.js';
export { validateGraph, type ValidateOptions } from './onnx/validate.js';

// ONNX Runtime sessions and gradient graphs
export { Session, type SessionOptions } from './runtime/session.js';
export { SessionCache, type SessionCacheStats } from './runtime/session-cache.js';
export { buildGradientGraph, type GradientGraph, type GradientOptions } from './autodiff/engine.js';
export { differentiableOps } from './autodiff/registry.js';

// Weights files
export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
  type SafetensorsFile,
} from './io/safetensors.js';

// Layers (builder helpers with timm's parameter names) and model presets
export { layers };
export { buildBackbone, getPreset, presetNames, type PresetOptions } from './models/registry.js';
export {
  FEATURE_NAME,
  INPUT_NAME,
  LOGITS_NAME,
  type BackboneGraph,
  type ModelDef,
} from './models/types.js';
export { ParamStore, type Param } from './models/params.js';
export {
  exportOnnx,
  initialWeights,
  loadWeights,
  modelWithWeights,
  saveWeights,
  type LoadWeightsOptions,
  type LoadWeightsReport,
} from './models/weights.js';
export {
  checkedZooWeights,
  isZooRef,
  loadZooModel,
  readZooManifest,
  ZOO_PREFIX,
  zooEntries,
  zooRoot,
  type ZooManifest,
  type ZooModel,
  type ZooProbeCell,
} from './models/zoo.js';

// Data sets, batches and transforms
export { concatDatasets, feedBatches, subset, type ImageDataset } from './data/dataset.js';
export { loadFashionMnist } from './data/fashion-mnist.js';
export { loadCifar10 } from './data/cifar.js';
export {
  loadImageDir,
  loadImageFolder,
  type ImageLoadOptions,
  type ImageLoadResult,
} from './data/image-folder.js';
export { loadMarket1501 } from './data/market1501.js';
export { epochBatches, pkBatches, queryGallerySplit } from './data/samplers.js';
export {
  compose,
  horizontalFlip,
  normalize,
  randomCropWithPadding,
  randomErasing,
  resize,
  type Transform,
} from './data/transforms.js';
export {
  CORRUPTION_NAMES,
  corruptDataset,
  corruptedSplits,
  corruptImage,
  parseCorruptions,
  SEVERITIES,
  type CorruptedSplit,
  type CorruptionName,
} from './data/corruptions.js';

// Metrics, FLOPs and latency
export {
  classificationMetrics,
  topKAccuracy,
  type ClassificationMetrics,
} from './eval/classification.js';
export {
  distanceMatrix,
  evaluateRetrieval,
  type RetrievalInput,
  type RetrievalMetrics,
} from './eval/retrieval.js';
export { evaluateModel, type EvalTask, type ModelEvaluation } from './eval/evaluate.js';
export { countFlops, type FlopCount } from './eval/flops.js';
export { compareLatency, type LatencyComparison } from './eval/latency.js';
export { corruptionErrors, type CorruptionErrors } from './eval/robustness.js';
export {
  bootstrapMean,
  mcnemarExact,
  pairedBootstrap,
  tInterval,
  verdict,
  wilsonInterval,
  type BootstrapOptions,
  type BootstrapResult,
  type Interval,
  type McNemarResult,
  type TInterval,
  type Verdict,
} from './eval/statistics.js';

// Training: the compiled step, optimisers, schedules, losses, checkpoints, the one loop
export {
  TrainStep,
  type StepResult,
  type TensorSource,
  type TrainStepOptions,
} from './train/step.js';
export {
  AdamW,
  clipGradNorm,
  SGD,
  type AdamWOptions,
  type Optimizer,
  type SgdOptions,
} from './train/optim.js';
export { defaultDecayGroups } from './train/params.js';
export { constantLr, cosineWithWarmup, type LrSchedule } from './train/schedule.js';
export { crossEntropy, oneHot, TARGET_NAME, tripletBatchHard } from './train/losses.js';
export {
  trainSupervised,
  type EpochLog,
  type SupervisedConfig,
  type TrainResult,
} from './train/loop.js';
export { loadCheckpoint, saveCheckpoint, type CheckpointState } from './train/checkpoint.js';
export {
  runTraining,
  type EpochStep,
  type EpochSummary,
  type Objective,
  type Phase,
  type StepInfo,
  type TrainingOutcome,
  type TrainingRun,
} from './train/run.js';
export { graphObjective, type GraphSpec } from './train/objective.js';
export {
  orderStreams,
  persistentStreams,
  sharedDrawStreams,
  type EpochStreams,
  type StreamPlan,
} from './train/streams.js';
export type { ComputeRecord, ParamRole } from './train/compute.js';

// DenoiseRep: plan, fit (closed form or training), fuse, verify, diagnose
export {
  coefficients,
  makeSchedule,
  type Schedule,
  type TimestepFlag,
  type TimestepMode,
  type TimestepSpread,
} from './denoise/schedule.js';
export { selectLayers, type LayerFilter, type SelectedLayer } from './denoise/select.js';
export {
  DENOISE_SUFFIX,
  initDenoisers,
  planConversion,
  type ConversionPlan,
  type DenoiserPlan,
  type PlanOptions,
} from './denoise/plan.js';
export { MomentAccumulator, type CovarianceSpectrum } from './denoise/closed-form.js';
export {
  collectMoments,
  describePlan,
  fitClosedForm,
  fitClosedFormSweep,
  mergeMoments,
  readMoments,
  writeMoments,
  type ClosedFormFit,
  type ClosedFormReport,
  type PlannedLayerInfo,
} from './denoise/fit.js';
export { DenseKernels, type CompiledOptions, type GemmOptions } from './denoise/linalg-compiled.js';
export {
  trainLabelAugmented,
  trainLabelFree,
  type DenoiseTrainConfig,
  type LabelAugConfig,
  type TrainLog,
} from './denoise/train.js';
export { fuseModel, fusionProducts, fusionWeight, type FuseOptions } from './denoise/fuse.js';
export { verifyFusion, type VerifyOptions, type VerifyReport } from './denoise/verify.js';
export { readDenoisers, writeDenoisers } from './denoise/denoiser-file.js';
export { relativeWeightChange } from './denoise/diagnostics-math.js';
export {
  diagnoseFusion,
  spectraSvg,
  summarizeDiagnostics,
  svgToPng,
  type DiagnosticsSummary,
  type LayerReport,
} from './denoise/diagnostics.js';
export { attachTilde, trainTilde, type TildeConfig } from './denoise/tilde.js';

// The pipeline under the one-call API and the demo, and its steps
export {
  checkFusion,
  collectStatistics,
  fitAndFuse,
  runPipeline,
  writePipelineFiles,
  type CheckOptions,
  type CheckResult,
  type FitMethod,
  type FusedDenoisers,
  type ImageFeeds,
  type PipelineCommon,
  type PipelineFiles,
  type PipelineOptions,
  type PipelineResult,
  type PipelineStage,
  type ProgressEvent,
} from './denoise/pipeline.js';

// The experiments: the demo, and the study (every arm against a control)
export { demoSettings, runDemo, type DemoResult, type DemoSettings } from './experiments/demo.js';
export {
  runStudy,
  STUDY_ARMS,
  studyJson,
  studySettings,
  type StudyArm,
  type StudyRun,
  type StudySettings,
} from './experiments/study.js';
export type { StudyResults } from './experiments/study-report.js';

// Diffusion models as representation learners: the DDPM U-Net, its objective and samplers,
// features and the Fréchet distance, probes and generation
export { diffusionPresetNames, getDiffusionPreset, isDiffusionPreset } from './models/registry.js';
export type { UNetConfig, UNetDef } from './models/unet.js';
export {
  buildUNet,
  EPS_NAME,
  TIMESTEP_NAME,
  unetInitialWeights,
  unetModel,
  type UNetGraph,
} from './models/unet-graph.js';
export { Ema } from './train/ema.js';
export { ddpmSchedule } from './diffusion/schedule.js';
export { ddpmFeeds, ddpmTrainingGraph } from './diffusion/objective.js';
export {
  ddimSteps,
  sampleImages,
  sessionPredictor,
  type NoisePredictor,
  type SampleOptions,
} from './diffusion/sampler.js';
export { loadDiffusionModel, type LoadedUNet } from './diffusion/load.js';
export { FeatureExtractor, type FeatureMatrix, type Pooling } from './diffusion/features.js';
export {
  frechetDistance,
  gaussianStats,
  modelFeatures,
  type GaussianStats,
} from './diffusion/frechet.js';
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
