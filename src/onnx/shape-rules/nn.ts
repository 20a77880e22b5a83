import { attrInt, attrInts, attrString, type Dim } from '../ir.js';
import {
  broadcastShapes,
  constInts,
  type InferContext,
  type InferredValue,
  normAxis,
  registerShapeRule,
  sameDtype,
} from '../shape-inference.js';

registerShapeRule('MatMul', (ctx) => {
  const dtype = sameDtype(ctx, [0, 1]);
  const a = ctx.required(0).shape;
  const b = ctx.required(1).shape;
  if (!a || !b) return [{ name: '', dtype, shape: null }];
  if (a.length === 0 || b.length === 0) ctx.fail('MatMul inputs must have rank >= 1');
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const k1 = a2[a2.length - 1]!;
  const k2 = b2[b2.length - 2]!;
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) {
    ctx.fail(`inner dimensions differ: [${a}] x [${b}]`);
  }
  const batch = broadcastShapes(ctx, [a2.slice(0, -2), b2.slice(0, -2)])!;
  const out: Dim[] = [...batch];
  if (a.length !== 1) out.push(a2[a2.length - 2]!);
  if (b.length !== 1) out.push(b2[b2.length - 1]!);
  return [{ name: '', dtype, shape: out }];
});

registerShapeRule('Gemm', (ctx) => {
  const dtype = sameDtype(ctx, [0, 1, 2]);
  const a = ctx.required(0).shape;
  const b = ctx.required(1).shape;
  if (!a || !b) return [{ name: '', dtype, shape: [null, null] }];
  if (a.length !== 2 || b.length !== 2) ctx.fail(`Gemm needs rank-2 inputs, got [${a}] and [${b}]`);
  const ta = attrInt(ctx.node, 'transA', 0) === 1;
  const tb = attrInt(ctx.node, 'transB', 0) === 1;
  const [m, k1] = ta ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [k2, n] = tb ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) {
    ctx.fail(`inner dimensions differ: A [${a}]${ta ? 'ᵀ' : ''} x B [${b}]${tb ? 'ᵀ' : ''}`);
  }
  const c = ctx.input(2);
  if (c?.shape) broadcastShapes(ctx, [[m, n], c.shape]);
  return [{ name: '', dtype, shape: [m, n] }];
});

/** Output spatial size of a conv/pool window along one axis. */
function windowOut(
  n: Dim,
  k: number,
  stride: number,
  dilation: number,
  padBegin: number,
  padEnd: number,
  ceil: boolean,
): Dim {
  if (typeof n !== 'number') return null;
  const eff = dilation * (k - 1) + 1;
  const q = (n + padBegin + padEnd - eff) / stride;
  if (!ceil) return Math.floor(q) + 1;
  // ceil_mode keeps a last partial window only if it starts inside the input or the
  // leading padding; one starting in the trailing padding is dropped (ONNX Runtime and
  // PyTorch agree on this).
  const out = Math.ceil(q) + 1;
  return (out - 1) * stride >= n + padBegin ? out - 1 : out;
}

interface WindowAttrs {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
}

function windowAttrs(ctx: InferContext, spatial: Dim[], kernel: number[]): WindowAttrs {
  const r = kernel.length;
  const strides = attrInts(ctx.node, 'strides', new Array<number>(r).fill(1));
  const dilations = attrInts(ctx.node, 'dilations', new Array<number>(r).fill(1));
  let pads = attrInts(ctx.node, 'pads', new Array<number>(2 * r).fill(0));
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const n = spatial[i];
      if (typeof n !== 'number') continue;
      const out = Math.ceil(n / strides[i]!);
      const total = Math.max(0, (out - 1) * strides[i]! + dilations[i]! * (kernel[i]! - 1) + 1 - n);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + r] = total - pads[i]!;
    }
  } else if (autoPad === 'VALID') pads = new Array<number>(2 * r).fill(0);
  if (strides.length !== r || dilations.length !== r || pads.length !== 2 * r) {
    ctx.fail(`strides/dilations/pads do not match ${r} spatial dims`);
  }
  return { kernel, strides, dilations, pads };
}

registerShapeRule('Conv', (ctx) => {
  const dtype = sameDtype(ctx, [0, 1, 2]);
  const x = ctx.required(0).shape;
  const w = ctx.required(1).shape;
  if (!x || !w) return [{ name: '', dtype, shape: null }];
  if (x.length !== w.length || x.length < 3)
    ctx.fail(`input [${x}] and weight [${w}] ranks do not fit`);
  const group = attrInt(ctx.node, 'group', 1);
  const cin = x[1];
  const wc = w[1];
  if (typeof cin === 'number' && typeof wc === 'number' && cin !== wc * group) {
    ctx.fail(
      `input has ${cin} channels but weight [${w}] with group ${group} expects ${Number(wc) * group}`,
    );
  }
  const kernel = attrInts(
    ctx.node,
    'kernel_shape',
    w.slice(2).map((d) => Number(d)),
  );
  const wa = windowAttrs(ctx, x.slice(2), kernel);
  const r = kernel.length;
  const spatial = x
    .slice(2)
    .map((n, i) =>
      windowOut(
        n,
        kernel[i]!,
        wa.strides[i]!,
        wa.dilations[i]!,
        wa.pads[i]!,
        wa.pads[i + r]!,
        false,
      ),
    );
  return [{ name: '', dtype, shape: [x[0]!, w[0]!, ...spatial] }];
});

registerShapeRule('ConvTranspose', (ctx) => {
  const dtype = sameDtype(ctx, [0, 1, 2]);
  const x = ctx.required(0).shape;
  const w = ctx.required(1).shape;
  if (!x || !w) return [{ name: '', dtype, shape: null }];
  const group = attrInt(ctx.node, 'group', 1);
  const kernel = attrInts(
    ctx.node,
    'kernel_shape',
    w.slice(2).map((d) => Number(d)),
  );
  const r = kernel.length;
  if (x.length !== w.length || x.length < 3 || r !== x.length - 2)
    ctx.fail(`input [${x}], weight [${w}] and kernel [${kernel}] ranks do not fit`);
  const strides = attrInts(ctx.node, 'strides', new Array<number>(r).fill(1));
  const dilations = attrInts(ctx.node, 'dilations', new Array<number>(r).fill(1));
  const pads = attrInts(ctx.node, 'pads', new Array<number>(2 * r).fill(0));
  if (strides.length !== r || dilations.length !== r || pads.length !== 2 * r)
    ctx.fail(`strides/dilations/pads do not match ${r} spatial dims`);
  const outPad = attrInts(ctx.node, 'output_padding', new Array<number>(r).fill(0));
  const explicit = attrInts(ctx.node, 'output_shape');
  const cout = typeof w[1] === 'number' ? w[1] * group : null;
  const spatial = explicit
    ? explicit.slice(-r)
    : x
        .slice(2)
        .map((n, i) =>
          typeof n === 'number'
            ? strides[i]! * (n - 1) +
              outPad[i]! +
              (kernel[i]! - 1) * dilations[i]! +
              1 -
              pads[i]! -
              pads[i + r]!
            : null,
        );
  return [{ name: '', dtype, shape: [x[0]!, cout, ...spatial] }];
});

for (const op of ['MaxPool', 'AveragePool', 'LpPool']) {
  registerShapeRule(op, (ctx) => {
    const xi = ctx.required(0);
    const x = xi.shape;
    if (!x) return [{ name: '', dtype: xi.dtype, shape: null }];
    const kernel = attrInts(ctx.node, 'kernel_shape');
    if (!kernel) return ctx.fail("missing attribute 'kernel_shape'");
    if (x.length !== kernel.length + 2)
      ctx.fail(`input [${x}] does not fit kernel_shape [${kernel}] (rank ${kernel.length + 2})`);
    const wa = windowAttrs(ctx, x.slice(2), kernel);
    const r = kernel.length;
    const ceil = attrInt(ctx.node, 'ceil_mode', 0) === 1;
    const spatial = x
      .slice(2)
      .map((n, i) =>
        windowOut(
          n,
          kernel[i]!,
          wa.strides[i]!,
          wa.dilations[i]!,
          wa.pads[i]!,
          wa.pads[i + r]!,
          ceil,
        ),
      );
    const y: InferredValue = { name: '', dtype: xi.dtype, shape: [x[0]!, x[1]!, ...spatial] };
    return ctx.node.outputs.length > 1 ? [y, { name: '', dtype: 'int64', shape: y.shape }] : [y];
  });
}

for (const op of ['GlobalAveragePool', 'GlobalMaxPool']) {
  registerShapeRule(op, (ctx) => {
    const x = ctx.required(0);
    if (!x.shape) return [{ name: '', dtype: x.dtype, shape: null }];
    if (x.shape.length < 3) ctx.fail(`input must be N x C x spatial, got rank ${x.shape.length}`);
    return [
      {
        name: '',
        dtype: x.dtype,
        shape: [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)],
      },
    ];
  });
}

registerShapeRule('BatchNormalization', (ctx) => {
  const x = ctx.required(0);
  sameDtype(ctx, [0, 1, 2]);
  const c = x.shape?.[1] ?? null;
  const stat: InferredValue = { name: '', dtype: ctx.required(3).dtype, shape: [c] };
  const outs: InferredValue[] = [{ name: '', dtype: x.dtype, shape: x.shape }];
  for (let i = 1; i < ctx.node.outputs.length; i++) outs.push({ ...stat });
  return outs;
});

// GroupNormalization (opset 18; scale and bias per group, per channel from opset 21).
registerShapeRule('GroupNormalization', (ctx) => {
  const x = ctx.required(0);
  sameDtype(ctx, [0, 1, 2]);
  const groups = attrInt(ctx.node, 'num_groups') ?? ctx.fail("missing attribute 'num_groups'");
  const c = x.shape?.[1];
  if (typeof c === 'number' && groups > 0 && c % groups !== 0)
    ctx.fail(`${c} channels do not split into ${groups} groups`);
  return [{ name: '', dtype: x.dtype, shape: x.shape && [...x.shape] }];
});

registerShapeRule('InstanceNormalization', (ctx) => {
  const x = ctx.required(0);
  return [{ name: '', dtype: x.dtype, shape: x.shape }];
});

registerShapeRule('LayerNormalization', (ctx) => {
  const x = ctx.required(0);
  sameDtype(ctx, [0, 1]);
  const outs: InferredValue[] = [{ name: '', dtype: x.dtype, shape: x.shape }];
  if (ctx.node.outputs.length > 1) {
    const r = x.shape?.length;
    const axis = r === undefined ? 0 : normAxis(ctx, attrInt(ctx.node, 'axis', -1), r);
    const stat = x.shape ? x.shape.map((d, k) => (k < axis ? d : 1)) : null;
    for (let i = 1; i < ctx.node.outputs.length; i++)
      outs.push({ name: '', dtype: 'float32', shape: stat });
  }
  return outs;
});

/** Reduction output shape. */
function reduceShape(
  ctx: InferContext,
  shape: Dim[] | null,
  axes: number[] | undefined,
  keep: boolean,
): Dim[] | null {
  if (!shape) return null;
  const r = shape.length;
  const noop = attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1;
  if (axes === undefined || axes.length === 0) {
    if (noop && axes !== undefined) return [...shape];
    return keep ? shape.map(() => 1) : [];
  }
  const norm = axes.map((a) => normAxis(ctx, a, r));
  return keep
    ? shape.map((d, k) => (norm.includes(k) ? 1 : d))
    : shape.filter((_, k) => !norm.includes(k));
}

for (const op of [
  'ReduceSum',
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceSumSquare',
  'ReduceLogSumExp',
  'ReduceLogSum',
]) {
  registerShapeRule(op, (ctx) => {
    const x = ctx.required(0);
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    // ReduceSum takes axes as an input from opset 13, the others from opset 18.
    const axesAsInput = op === 'ReduceSum' ? ctx.opset >= 13 : ctx.opset >= 18;
    let axes: number[] | undefined;
    if (axesAsInput) {
      if (ctx.input(1)) {
        axes = constInts(ctx, 1);
        if (!axes)
          return [
            { name: '', dtype: x.dtype, shape: keep && x.shape ? x.shape.map(() => null) : null },
          ];
      } else {
        // An omitted axes input counts as empty: noop_with_empty_axes then keeps x's shape.
        axes = [];
      }
    } else axes = attrInts(ctx.node, 'axes');
    return [{ name: '', dtype: x.dtype, shape: reduceShape(ctx, x.shape, axes, keep) }];
  });
}

for (const op of ['ArgMax', 'ArgMin']) {
  registerShapeRule(op, (ctx) => {
    const x = ctx.required(0);
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    return [
      {
        name: '',
        dtype: 'int64',
        shape: reduceShape(ctx, x.shape, [attrInt(ctx.node, 'axis', 0)], keep),
      },
    ];
  });
}
