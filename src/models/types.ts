import type { LayerContext } from '../layers/context.js';
import type { GraphBuilder, Value } from '../onnx/builder.js';

/** Input name of every backbone graph: NCHW float32 images, batch symbolic 'N'. */
export const INPUT_NAME = 'input';
/** Output names of the evaluation graph. */
export const LOGITS_NAME = 'logits';
export const FEATURE_NAME = 'feature';

/** A backbone under construction: the values a training or evaluation graph builds on. */
export interface BackboneGraph {
  b: GraphBuilder;
  ctx: LayerContext;
  input: Value;
  /** Classifier output [N, numClasses]. */
  logits: Value;
  /** Retrieval feature [N, featureDim] (the BNNeck output when the neck is on). */
  feature: Value;
  /** Feature before the neck (for the triplet loss in the ReID recipe). */
  preNeckFeature: Value;
}

/** A named model architecture with its configuration. */
export interface ModelDef {
  name: string;
  family: 'vit' | 'resnet' | 'mlp' | 'probe';
  /** [C, H, W] */
  inputShape: [number, number, number];
  numClasses: number;
  featureDim: number;
  /** BNNeck retrieval head (TransReID): feature -> BatchNorm1d (frozen bias) -> classifier without bias. */
  bnneck: boolean;
  /** Builds the body and head into `b` (mode from `ctx`). */
  build(ctx: LayerContext, input: Value): { logits: Value; feature: Value; preNeckFeature: Value };
  /** Architecture settings, for logs and checkpoints. */
  config: Record<string, unknown>;
  /**
   * Per-channel input normalisation built into the graph, (x − mean) / std, so that the
   * model (and its ONNX export) takes pixels scaled to [0, 1].
   */
  normalize?: { mean: number[]; std: number[] };
}
