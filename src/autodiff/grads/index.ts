// The gradient rule table: one import per op file. Keep each section sorted.
import type { GradRule } from '../types.js';
import { absGrad } from './Abs_grad.js';
import { addGrad } from './Add_grad.js';
import { averagePoolGrad } from './AveragePool_grad.js';
import { batchNormalizationGrad } from './BatchNormalization_grad.js';
import { castGrad } from './Cast_grad.js';
import { clipGrad } from './Clip_grad.js';
import { concatGrad } from './Concat_grad.js';
import { convGrad } from './Conv_grad.js';
import { cosGrad } from './Cos_grad.js';
import { divGrad } from './Div_grad.js';
import { dropoutGrad } from './Dropout_grad.js';
import { eluGrad } from './Elu_grad.js';
import { erfGrad } from './Erf_grad.js';
import { expGrad } from './Exp_grad.js';
import { expandGrad } from './Expand_grad.js';
import { flattenGrad } from './Flatten_grad.js';
import { gatherGrad } from './Gather_grad.js';
import { gatherElementsGrad } from './GatherElements_grad.js';
import { gemmGrad } from './Gemm_grad.js';
import { globalAveragePoolGrad } from './GlobalAveragePool_grad.js';
import { hardSigmoidGrad } from './HardSigmoid_grad.js';
import { identityGrad } from './Identity_grad.js';
import { layerNormalizationGrad } from './LayerNormalization_grad.js';
import { leakyReluGrad } from './LeakyRelu_grad.js';
import { logGrad } from './Log_grad.js';
import { logSoftmaxGrad } from './LogSoftmax_grad.js';
import { matMulGrad } from './MatMul_grad.js';
import { maxGrad, minGrad } from './Max_grad.js';
import { maxPoolGrad } from './MaxPool_grad.js';
import { meanGrad } from './Mean_grad.js';
import { mulGrad } from './Mul_grad.js';
import { negGrad } from './Neg_grad.js';
import { padGrad } from './Pad_grad.js';
import { powGrad } from './Pow_grad.js';
import { reciprocalGrad } from './Reciprocal_grad.js';
import { reduceL2Grad } from './ReduceL2_grad.js';
import { reduceMaxGrad, reduceMinGrad } from './ReduceMax_grad.js';
import { reduceMeanGrad } from './ReduceMean_grad.js';
import { reduceSumGrad } from './ReduceSum_grad.js';
import { reduceSumSquareGrad } from './ReduceSumSquare_grad.js';
import { reluGrad } from './Relu_grad.js';
import { reshapeGrad } from './Reshape_grad.js';
import { resizeGrad } from './Resize_grad.js';
import { sigmoidGrad } from './Sigmoid_grad.js';
import { sinGrad } from './Sin_grad.js';
import { sliceGrad } from './Slice_grad.js';
import { softmaxGrad } from './Softmax_grad.js';
import { softplusGrad } from './Softplus_grad.js';
import { splitGrad } from './Split_grad.js';
import { sqrtGrad } from './Sqrt_grad.js';
import { squeezeGrad } from './Squeeze_grad.js';
import { subGrad } from './Sub_grad.js';
import { sumGrad } from './Sum_grad.js';
import { tanhGrad } from './Tanh_grad.js';
import { tileGrad } from './Tile_grad.js';
import { transposeGrad } from './Transpose_grad.js';
import { unsqueezeGrad } from './Unsqueeze_grad.js';
import { whereGrad } from './Where_grad.js';

export const ALL_GRAD_RULES: readonly GradRule[] = [
  // arithmetic and linear algebra
  addGrad,
  divGrad,
  gemmGrad,
  identityGrad,
  matMulGrad,
  mulGrad,
  reduceMeanGrad,
  reluGrad,
  subGrad,
  // elementwise, activations and reductions (helper A)
  absGrad,
  castGrad,
  clipGrad,
  dropoutGrad,
  eluGrad,
  erfGrad,
  expGrad,
  hardSigmoidGrad,
  leakyReluGrad,
  logGrad,
  logSoftmaxGrad,
  maxGrad,
  meanGrad,
  minGrad,
  negGrad,
  powGrad,
  reciprocalGrad,
  reduceL2Grad,
  reduceMaxGrad,
  reduceMinGrad,
  reduceSumGrad,
  reduceSumSquareGrad,
  sigmoidGrad,
  softmaxGrad,
  softplusGrad,
  sqrtGrad,
  sumGrad,
  tanhGrad,
  whereGrad,
  // time embedding and upsampling (the diffusion U-Net)
  cosGrad,
  sinGrad,
  resizeGrad,
  // shape and indexing (helper B)
  concatGrad,
  expandGrad,
  flattenGrad,
  gatherElementsGrad,
  gatherGrad,
  padGrad,
  reshapeGrad,
  sliceGrad,
  splitGrad,
  squeezeGrad,
  tileGrad,
  transposeGrad,
  unsqueezeGrad,
  // normalisation, convolution and pooling (helper C)
  averagePoolGrad,
  batchNormalizationGrad,
  convGrad,
  globalAveragePoolGrad,
  layerNormalizationGrad,
  maxPoolGrad,
];

/**
 * Ops whose outputs carry no gradient: integer, boolean and shape paths, constants and
 * random draws, and the piecewise-constant Floor/Ceil/Round/Sign (derivative zero almost
 * everywhere). ONNX Runtime's NO_GRADIENT list plays the same role.
 */
export const NO_GRADIENT_OPS: readonly string[] = [
  'And',
  'ArgMax',
  'ArgMin',
  'Bernoulli',
  'BitShift',
  'Ceil',
  'Constant',
  'ConstantOfShape',
  'Equal',
  'EyeLike',
  'Floor',
  'Greater',
  'GreaterOrEqual',
  'IsInf',
  'IsNaN',
  'Less',
  'LessOrEqual',
  'Multinomial',
  'NonZero',
  'Not',
  'OneHot',
  'Or',
  'RandomNormal',
  'RandomNormalLike',
  'RandomUniform',
  'RandomUniformLike',
  'Range',
  'Round',
  'Shape',
  'Sign',
  'Size',
  'Xor',
];
