// The gradient rule table: one import per op file. Keep each section sorted.
import type { GradRule } from '../types.js';
import { addGrad } from './Add_grad.js';
import { averagePoolGrad } from './AveragePool_grad.js';
import { batchNormalizationGrad } from './BatchNormalization_grad.js';
import { convGrad } from './Conv_grad.js';
import { divGrad } from './Div_grad.js';
import { gemmGrad } from './Gemm_grad.js';
import { globalAveragePoolGrad } from './GlobalAveragePool_grad.js';
import { identityGrad } from './Identity_grad.js';
import { layerNormalizationGrad } from './LayerNormalization_grad.js';
import { matMulGrad } from './MatMul_grad.js';
import { maxPoolGrad } from './MaxPool_grad.js';
import { mulGrad } from './Mul_grad.js';
import { reduceMeanGrad } from './ReduceMean_grad.js';
import { reluGrad } from './Relu_grad.js';
import { subGrad } from './Sub_grad.js';

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
  // elementwise and activations (helper A)
  // shape and indexing (helper B)
  // normalisation, convolution and pooling (helper C)
  averagePoolGrad,
  batchNormalizationGrad,
  convGrad,
  globalAveragePoolGrad,
  layerNormalizationGrad,
  maxPoolGrad,
];

/**
 * Ops whose outputs carry no gradient: integer, boolean and shape paths, and constants
 * (ONNX Runtime's NO_GRADIENT list plays the same role).
 */
export const NO_GRADIENT_OPS: readonly string[] = [
  'And',
  'ArgMax',
  'ArgMin',
  'Constant',
  'ConstantOfShape',
  'Equal',
  'EyeLike',
  'Greater',
  'GreaterOrEqual',
  'IsInf',
  'IsNaN',
  'Less',
  'LessOrEqual',
  'Not',
  'OneHot',
  'Or',
  'Range',
  'RandomNormalLike',
  'RandomUniformLike',
  'Shape',
  'Sign',
  'Size',
  'Floor',
  'Ceil',
  'Round',
  'Xor',
];
