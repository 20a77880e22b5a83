import { dtypeFromCode } from '../dtype.js';
import type { Dim } from '../ir.js';
import { attrInt, attrTensor } from '../ir.js';
import {
  broadcastShapes,
  type InferContext,
  type InferredValue,
  normAxis,
  registerShapeRule,
  sameDtype,
  tensorInfo,
} from '../shape-inference.js';

const sameAsInput = (ctx: InferContext): InferredValue[] => {
  const x = ctx.required(0);
  return [{ name: '', dtype: x.dtype, shape: x.shape && [...x.shape] }];
};

for (const op of [
  'Neg',
  'Sqrt',
  'Exp',
  'Log',
  'Abs',
  'Tanh',
  'Sigmoid',
  'Relu',
  'LeakyRelu',
  'Erf',
  'Reciprocal',
  'Sign',
  'Softplus',
  'Floor',
  'Ceil',
  'Round',
  'Cos',
  'Sin',
  'Elu',
  'HardSigmoid',
  'Selu',
  'Clip',
  'CumSum',
  'Trilu',
  // Activations of MobileNetV3 / ConvNeXt / YOLO-style models (Gelu is ai.onnx from opset 20).
  'HardSwish',
  'Gelu',
  'Mish',
  'Softsign',
  'ThresholdedRelu',
  'Celu',
  'Shrink',
  'Hardmax',
  'LRN',
  'MeanVarianceNormalization',
  'Tan',
  'Asin',
  'Acos',
  'Atan',
  'Sinh',
  'Cosh',
  'Asinh',
  'Acosh',
  'Atanh',
  'BitwiseNot',
]) {
  registerShapeRule(op, sameAsInput);
}

for (const op of ['Softmax', 'LogSoftmax']) {
  registerShapeRule(op, (ctx) => {
    const x = ctx.required(0);
    if (x.shape) normAxis(ctx, attrInt(ctx.node, 'axis', -1), x.shape.length);
    return sameAsInput(ctx);
  });
}

// Identity also forwards known contents (shape subgraphs pass values through it).
registerShapeRule('Identity', (ctx) => {
  const x = ctx.required(0);
  return [{ ...x, name: '' }];
});

// Random tensors shaped like the input (dtype attribute: ONNX code, default the input's).
for (const op of ['RandomNormalLike', 'RandomUniformLike']) {
  registerShapeRule(op, (ctx) => {
    const x = ctx.required(0);
    const code = ctx.node.attrs.dtype?.type === 'int' ? ctx.node.attrs.dtype.value : undefined;
    return [
      {
        name: '',
        dtype: code !== undefined ? (dtypeFromCode(code) ?? x.dtype) : x.dtype,
        shape: x.shape,
      },
    ];
  });
}

registerShapeRule('Not', (ctx) => [{ name: '', dtype: 'bool', shape: ctx.required(0).shape }]);
for (const op of ['IsNaN', 'IsInf']) {
  registerShapeRule(op, (ctx) => [{ name: '', dtype: 'bool', shape: ctx.required(0).shape }]);
}

registerShapeRule('Dropout', (ctx) => {
  const x = ctx.required(0);
  return [
    { name: '', dtype: x.dtype, shape: x.shape },
    { name: '', dtype: 'bool', shape: x.shape },
  ];
});

/** Elementwise arithmetic on small known integer contents (computed shapes). */
function foldInts(
  a: InferredValue,
  b: InferredValue,
  f: (x: number, y: number) => number,
): Dim[] | undefined {
  if (!a.value || !b.value) return undefined;
  const n = Math.max(a.value.length, b.value.length);
  if (a.value.length !== n && a.value.length !== 1) return undefined;
  if (b.value.length !== n && b.value.length !== 1) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a.value[a.value.length === 1 ? 0 : i];
    const y = b.value[b.value.length === 1 ? 0 : i];
    out.push(typeof x === 'number' && typeof y === 'number' ? f(x, y) : null);
  }
  return out;
}

const arith: Record<string, (x: number, y: number) => number> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y) => Math.trunc(x / y),
};

for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Mod']) {
  registerShapeRule(op, (ctx) => {
    const dtype = sameDtype(ctx, [0, 1]);
    const a = ctx.required(0);
    const b = ctx.required(1);
    const out: InferredValue = { name: '', dtype, shape: broadcastShapes(ctx, [a.shape, b.shape]) };
    const f = arith[op];
    if (f && (dtype === 'int64' || dtype === 'int32')) {
      const v = foldInts(a, b, f);
      if (v) out.value = v;
    }
    return [out];
  });
}

// PRelu broadcasts the slope to X (unidirectionally): the output is shaped like X.
registerShapeRule('PRelu', (ctx) => {
  const dtype = sameDtype(ctx, [0, 1]);
  const x = ctx.required(0);
  const slope = ctx.required(1);
  if (x.shape && slope.shape) {
    const out = broadcastShapes(ctx, [x.shape, slope.shape]);
    if (out && out.length !== x.shape.length)
      ctx.fail(`slope [${slope.shape}] does not broadcast to X [${x.shape}]`);
  }
  return [{ name: '', dtype, shape: x.shape && [...x.shape] }];
});

registerShapeRule('Pow', (ctx) => {
  const a = ctx.required(0);
  const b = ctx.required(1);
  return [{ name: '', dtype: a.dtype, shape: broadcastShapes(ctx, [a.shape, b.shape]) }];
});

// Variadic (one or more inputs, multidirectional broadcasting).
for (const op of ['Sum', 'Mean', 'Max', 'Min']) {
  registerShapeRule(op, (ctx) => {
    if (ctx.inputCount === 0) ctx.fail(`${op} needs at least one input`);
    const idx = [...Array(ctx.inputCount).keys()];
    const dtype = sameDtype(ctx, idx);
    return [
      {
        name: '',
        dtype,
        shape: broadcastShapes(
          ctx,
          idx.map((i) => ctx.required(i).shape),
        ),
      },
    ];
  });
}

for (const op of [
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'And',
  'Or',
  'Xor',
]) {
  registerShapeRule(op, (ctx) => {
    sameDtype(ctx, [0, 1]);
    const shape = broadcastShapes(ctx, [ctx.required(0).shape, ctx.required(1).shape]);
    return [{ name: '', dtype: 'bool', shape }];
  });
}

registerShapeRule('Where', (ctx) => {
  const c = ctx.required(0);
  if (c.dtype !== 'bool') ctx.fail(`condition '${c.name}' must be bool, got ${c.dtype}`);
  const dtype = sameDtype(ctx, [1, 2]);
  const shape = broadcastShapes(ctx, [c.shape, ctx.required(1).shape, ctx.required(2).shape]);
  return [{ name: '', dtype, shape }];
});

registerShapeRule('Cast', (ctx) => {
  const x = ctx.required(0);
  const to = dtypeFromCode(attrInt(ctx.node, 'to', 0));
  if (!to) return ctx.fail(`unsupported 'to' dtype code ${attrInt(ctx.node, 'to', 0)}`);
  const out: InferredValue = { name: '', dtype: to, shape: x.shape };
  if (x.value && (to === 'int64' || to === 'int32')) out.value = x.value;
  return [out];
});

registerShapeRule('Constant', (ctx) => {
  const t = attrTensor(ctx.node, 'value');
  if (t) return [tensorInfo('', t)];
  const a = ctx.node.attrs;
  if (a.value_int?.type === 'int')
    return [{ name: '', dtype: 'int64', shape: [], value: [a.value_int.value] }];
  if (a.value_ints?.type === 'ints') {
    return [
      {
        name: '',
        dtype: 'int64',
        shape: [a.value_ints.value.length],
        value: [...a.value_ints.value],
      },
    ];
  }
  if (a.value_float?.type === 'float') return [{ name: '', dtype: 'float32', shape: [] }];
  if (a.value_floats?.type === 'floats') {
    return [{ name: '', dtype: 'float32', shape: [a.value_floats.value.length] }];
  }
  return ctx.fail('Constant without a supported value attribute');
});
