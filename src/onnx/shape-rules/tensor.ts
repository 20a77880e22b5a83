import { dtypeFromCode } from '../dtype.js';
import { attrInt, attrInts, attrTensor, type Dim } from '../ir.js';
import {
  constInts,
  dimProduct,
  type InferContext,
  type InferredValue,
  normAxis,
  registerShapeRule,
} from '../shape-inference.js';
import { toNumbers } from '../tensor.js';

registerShapeRule('Shape', (ctx) => {
  const x = ctx.required(0);
  if (!x.shape) return [{ name: '', dtype: 'int64', shape: [null] }];
  const r = x.shape.length;
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
  const start = clamp(attrInt(ctx.node, 'start', 0));
  const end = clamp(attrInt(ctx.node, 'end', r));
  const value = x.shape.slice(start, Math.max(start, end));
  return [{ name: '', dtype: 'int64', shape: [value.length], value }];
});

registerShapeRule('Size', (ctx) => {
  const x = ctx.required(0);
  const n = x.shape ? dimProduct(x.shape) : null;
  return [{ name: '', dtype: 'int64', shape: [], ...(n !== null ? { value: [n] } : {}) }];
});

registerShapeRule('Reshape', (ctx) => {
  const x = ctx.required(0);
  const s = ctx.required(1);
  if (s.dtype !== 'int64') ctx.fail(`shape input '${s.name}' must be int64, got ${s.dtype}`);
  const allowZero = attrInt(ctx.node, 'allowzero', 0) === 1;
  if (!s.value) return [{ name: '', dtype: x.dtype, shape: ctx.unknownOfRank(s.shape?.[0]) }];
  const out: Dim[] = s.value.map((d, i) => (d === 0 && !allowZero ? (x.shape?.[i] ?? null) : d));
  const neg = out.findIndex((d) => d === -1);
  if (neg >= 0) {
    if (out.filter((d) => d === -1).length > 1) ctx.fail('more than one -1 in the target shape');
    const total = x.shape ? dimProduct(x.shape) : null;
    const rest = dimProduct(out.filter((_, i) => i !== neg));
    if (typeof total === 'number' && typeof rest === 'number') {
      if (rest === 0 || total % rest !== 0) {
        ctx.fail(`cannot reshape [${x.shape}] (${total} elements) to [${s.value}]`);
      }
      out[neg] = total / rest;
    } else if (x.shape) {
      // Symbolic case: cancel matching symbolic/static factors (e.g. [N,4,8] -> [-1,8] = N*4).
      out[neg] = symbolicQuotient(
        x.shape,
        out.filter((_, i) => i !== neg),
      );
    } else out[neg] = null;
  } else if (x.shape) {
    const a = dimProduct(x.shape);
    const b = dimProduct(out);
    if (typeof a === 'number' && typeof b === 'number' && a !== b) {
      ctx.fail(`cannot reshape [${x.shape}] (${a} elements) to [${out}] (${b} elements)`);
    }
  }
  return [{ name: '', dtype: x.dtype, shape: out }];
});

/**
 * Symbolic dims are products written `N` or `N*50` (symbols sorted, then one integer
 * coefficient): parses one into its symbols and coefficient.
 */
function factors(d: Dim): { syms: string[]; k: number } | null {
  if (typeof d === 'number') return { syms: [], k: d };
  if (d === null) return null;
  const syms: string[] = [];
  let k = 1;
  for (const part of d.split('*')) {
    if (/^\d+$/.test(part)) k *= Number(part);
    else syms.push(part);
  }
  return { syms, k };
}

/** Writes symbols and a coefficient back as a dim (a number when no symbol is left). */
function formatDim(syms: string[], k: number): Dim {
  if (syms.length === 0) return k;
  const s = [...syms].sort().join('*');
  return k === 1 ? s : `${s}*${k}`;
}

/**
 * Product of `num` divided by product of `den`, when the symbolic factors cancel and the
 * coefficients divide exactly ([N,50,128] → [-1,128] gives `N*50`); null otherwise.
 */
function symbolicQuotient(num: Dim[], den: Dim[]): Dim {
  const syms: string[] = [];
  let nk = 1;
  let dk = 1;
  for (const d of num) {
    const f = factors(d);
    if (!f) return null;
    syms.push(...f.syms);
    nk *= f.k;
  }
  for (const d of den) {
    const f = factors(d);
    if (!f) return null;
    for (const s of f.syms) {
      const i = syms.indexOf(s);
      if (i < 0) return null;
      syms.splice(i, 1);
    }
    dk *= f.k;
  }
  if (dk === 0 || nk % dk !== 0) return null;
  return formatDim(syms, nk / dk);
}

registerShapeRule('Flatten', (ctx) => {
  const x = ctx.required(0);
  if (!x.shape) return [{ name: '', dtype: x.dtype, shape: [null, null] }];
  const r = x.shape.length;
  let axis = attrInt(ctx.node, 'axis', 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis > r) ctx.fail(`axis ${axis} out of range for rank ${r}`);
  const outer = axis === 0 ? 1 : axis === 1 ? x.shape[0]! : dimProduct(x.shape.slice(0, axis));
  const inner = axis === r - 1 ? x.shape[r - 1]! : dimProduct(x.shape.slice(axis));
  return [{ name: '', dtype: x.dtype, shape: [outer, inner] }];
});

registerShapeRule('Transpose', (ctx) => {
  const x = ctx.required(0);
  if (!x.shape) return [{ name: '', dtype: x.dtype, shape: null }];
  const r = x.shape.length;
  const perm = attrInts(ctx.node, 'perm', [...Array(r).keys()].reverse());
  if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    ctx.fail(`perm [${perm}] is not a permutation of rank ${r}`);
  }
  return [{ name: '', dtype: x.dtype, shape: perm.map((p) => x.shape![p]!) }];
});

registerShapeRule('Concat', (ctx) => {
  if (ctx.inputCount === 0) ctx.fail('Concat needs at least one input');
  const ins = [...Array(ctx.inputCount).keys()].map((i) => ctx.required(i));
  const dtype = ins[0]!.dtype;
  for (const v of ins)
    if (v.dtype !== dtype) ctx.fail(`input '${v.name}' is ${v.dtype}, expected ${dtype}`);
  const shapes = ins.map((v) => v.shape);
  if (shapes.some((s) => s === null)) return [{ name: '', dtype, shape: null }];
  const r = shapes[0]!.length;
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), r);
  const out: Dim[] = [...shapes[0]!];
  for (const s of shapes.slice(1)) {
    if (s!.length !== r) ctx.fail(`inputs have ranks ${shapes.map((x) => x!.length).join(', ')}`);
    for (let k = 0; k < r; k++) {
      if (k === axis) {
        const a = out[k]!;
        const b = s![k]!;
        out[k] = typeof a === 'number' && typeof b === 'number' ? a + b : null;
      } else if (typeof out[k] === 'number' && typeof s![k] === 'number' && out[k] !== s![k]) {
        ctx.fail(`dimension ${k} differs between inputs: ${out[k]} vs ${s![k]}`);
      } else if (out[k] === null) out[k] = s![k]!;
    }
  }
  const res: InferredValue = { name: '', dtype, shape: out };
  if (r === 1 && ins.every((v) => v.value)) res.value = ins.flatMap((v) => v.value!);
  return [res];
});

function sliceParams(ctx: InferContext): {
  starts?: number[];
  ends?: number[];
  axes?: number[];
  steps?: number[];
} {
  return {
    starts: constInts(ctx, 1),
    ends: constInts(ctx, 2),
    axes: ctx.input(3) ? constInts(ctx, 3) : undefined,
    steps: ctx.input(4) ? constInts(ctx, 4) : undefined,
  };
}

/** Length of `range(start, end, step)` after ONNX Slice clamping on a dim of size `n`. */
export function sliceLength(n: number, start: number, end: number, step: number): [number, number] {
  if (start < 0) start += n;
  if (end < 0) end += n;
  if (step > 0) {
    start = Math.min(Math.max(start, 0), n);
    end = Math.min(Math.max(end, 0), n);
    return [start, Math.max(0, Math.ceil((end - start) / step))];
  }
  start = Math.min(Math.max(start, -1), n - 1);
  end = Math.min(Math.max(end, -1), n - 1);
  return [start, Math.max(0, Math.ceil((end - start) / step))];
}

registerShapeRule('Slice', (ctx) => {
  const x = ctx.required(0);
  if (!x.shape) return [{ name: '', dtype: x.dtype, shape: null }];
  const r = x.shape.length;
  const { starts, ends, axes, steps } = sliceParams(ctx);
  const hasAxes = ctx.input(3) !== undefined;
  const hasSteps = ctx.input(4) !== undefined;
  if (!starts || !ends || (hasAxes && !axes) || (hasSteps && !steps)) {
    // Unknown parameters: only the sliced axes become unknown when the axes are known.
    if (axes)
      return [
        {
          name: '',
          dtype: x.dtype,
          shape: x.shape.map((d, k) =>
            axes.map((a) => (a < 0 ? a + r : a)).includes(k) ? null : d,
          ),
        },
      ];
    return [{ name: '', dtype: x.dtype, shape: x.shape.map(() => null) }];
  }
  const ax = axes ?? starts.map((_, i) => i);
  const st = steps ?? starts.map(() => 1);
  const out: Dim[] = [...x.shape];
  const res: InferredValue = { name: '', dtype: x.dtype, shape: out };
  for (let i = 0; i < ax.length; i++) {
    const a = normAxis(ctx, ax[i]!, r);
    if (st[i] === 0) ctx.fail('slice step 0');
    const n = x.shape[a];
    if (typeof n !== 'number') {
      // A symbolic dim sliced with start 0 and end past it keeps its size.
      out[a] = starts[i] === 0 && st[i] === 1 && ends[i]! >= 2 ** 31 - 1 ? n! : null;
      continue;
    }
    const [s, len] = sliceLength(n, starts[i]!, ends[i]!, st[i]!);
    out[a] = len;
    if (r === 1 && x.value) {
      const v: Dim[] = [];
      for (let k = 0; k < len; k++) v.push(x.value[s + k * st[i]!]!);
      res.value = v;
    }
  }
  return [res];
});

registerShapeRule('Gather', (ctx) => {
  const x = ctx.required(0);
  const idx = ctx.required(1);
  if (idx.dtype !== 'int64' && idx.dtype !== 'int32')
    ctx.fail(`indices '${idx.name}' must be int32/int64`);
  if (!x.shape || !idx.shape) return [{ name: '', dtype: x.dtype, shape: null }];
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.shape.length);
  const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
  const res: InferredValue = { name: '', dtype: x.dtype, shape };
  if (
    x.value &&
    x.shape.length === 1 &&
    idx.value &&
    idx.value.every((v) => typeof v === 'number')
  ) {
    const n = x.value.length;
    res.value = idx.value.map((i) => x.value![i < 0 ? i + n : i] ?? null);
  }
  return [res];
});

registerShapeRule('GatherElements', (ctx) => {
  const x = ctx.required(0);
  const idx = ctx.required(1);
  return [{ name: '', dtype: x.dtype, shape: idx.shape }];
});

registerShapeRule('ScatterElements', (ctx) => {
  const x = ctx.required(0);
  return [{ name: '', dtype: x.dtype, shape: x.shape }];
});
registerShapeRule('ScatterND', (ctx) => {
  const x = ctx.required(0);
  return [{ name: '', dtype: x.dtype, shape: x.shape }];
});

function axesOf(ctx: InferContext, inputIndex: number, attr: string): number[] | undefined {
  if (ctx.opset >= 13 || ctx.node.attrs[attr] === undefined) {
    if (ctx.input(inputIndex)) return constInts(ctx, inputIndex);
    return ctx.node.attrs[attr] ? attrInts(ctx.node, attr) : undefined;
  }
  return attrInts(ctx.node, attr);
}

registerShapeRule('Squeeze', (ctx) => {
  const x = ctx.required(0);
  if (!x.shape) return [{ name: '', dtype: x.dtype, shape: null }];
  const r = x.shape.length;
  const given = axesOf(ctx, 1, 'axes');
  if (ctx.input(1) && !given) return [{ name: '', dtype: x.dtype, shape: null }];
  const axes = given
    ? given.map((a) => normAxis(ctx, a, r))
    : x.shape.flatMap((d, k) => (d === 1 ? [k] : []));
  for (const a of axes) {
    const d = x.shape[a];
    if (typeof d === 'number' && d !== 1) ctx.fail(`cannot squeeze axis ${a} of size ${d}`);
  }
  const res: InferredValue = {
    name: '',
    dtype: x.dtype,
    shape: x.shape.filter((_, k) => !axes.includes(k)),
  };
  if (x.value) res.value = x.value;
  return [res];
});

registerShapeRule('Unsqueeze', (ctx) => {
  const x = ctx.required(0);
  const axes = axesOf(ctx, 1, 'axes');
  if (!x.shape || !axes) return [{ name: '', dtype: x.dtype, shape: null }];
  const r = x.shape.length + axes.length;
  const norm = axes.map((a) => normAxis(ctx, a, r)).sort((a, b) => a - b);
  const out: Dim[] = [];
  let src = 0;
  for (let k = 0; k < r; k++) out.push(norm.includes(k) ? 1 : x.shape[src++]!);
  const res: InferredValue = { name: '', dtype: x.dtype, shape: out };
  if (x.value) res.value = x.value;
  return [res];
});

registerShapeRule('Expand', (ctx) => {
  const x = ctx.required(0);
  const s = ctx.required(1);
  if (!s.value || !x.shape) {
    // The output rank is the larger of the two; unknown when either is.
    const r = ctx.unknownOfRank(s.shape?.[0]);
    const shape = r && x.shape && x.shape.length > r.length ? x.shape.map(() => null) : r;
    return [{ name: '', dtype: x.dtype, shape: x.shape ? shape : null }];
  }
  const target = s.value;
  const rank = Math.max(target.length, x.shape.length);
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    const a = x.shape[x.shape.length - rank + k] ?? 1;
    const b = target[target.length - rank + k] ?? 1;
    if (a === 1) out.push(b);
    else if (b === 1 || b === a) out.push(a);
    else if (typeof a === 'number' && typeof b === 'number')
      ctx.fail(`cannot expand [${x.shape}] to [${target}]`);
    else out.push(typeof a === 'number' ? a : b);
  }
  return [{ name: '', dtype: x.dtype, shape: out }];
});

registerShapeRule('Tile', (ctx) => {
  const x = ctx.required(0);
  const reps = constInts(ctx, 1);
  if (!x.shape || !reps)
    return [{ name: '', dtype: x.dtype, shape: x.shape && x.shape.map(() => null) }];
  if (reps.length !== x.shape.length)
    ctx.fail(`repeats has ${reps.length} entries for an input of rank ${x.shape.length}`);
  if (reps.some((r) => r < 0)) ctx.fail(`negative repeats [${reps}]`);
  return [
    {
      name: '',
      dtype: x.dtype,
      shape: x.shape.map((d, k) =>
        typeof d === 'number' ? d * reps[k]! : reps[k] === 1 ? d : null,
      ),
    },
  ];
});

registerShapeRule('ConstantOfShape', (ctx) => {
  const s = ctx.required(0);
  const t = attrTensor(ctx.node, 'value');
  const dtype = t?.dtype ?? 'float32';
  const shape = s.value ? [...s.value] : ctx.unknownOfRank(s.shape?.[0]);
  const res: InferredValue = { name: '', dtype, shape };
  if (t && (dtype === 'int64' || dtype === 'int32') && s.value && s.value.length <= 1) {
    const n = s.value.length === 0 ? 1 : s.value[0];
    if (typeof n === 'number' && n <= 64) res.value = Array(n).fill(toNumbers(t)[0]);
  }
  return [res];
});

registerShapeRule('Range', (ctx) => {
  const start = ctx.required(0);
  const [s, l, d] = [constInts(ctx, 0), constInts(ctx, 1), constInts(ctx, 2)];
  if (s?.length === 1 && l?.length === 1 && d?.length === 1 && d[0] !== 0) {
    const n = Math.max(Math.ceil((l[0]! - s[0]!) / d[0]!), 0);
    return [{ name: '', dtype: start.dtype, shape: [n] }];
  }
  return [{ name: '', dtype: start.dtype, shape: [null] }];
});

registerShapeRule('Split', (ctx) => {
  const x = ctx.required(0);
  const n = ctx.node.outputs.length;
  if (!x.shape) return Array.from({ length: n }, () => ({ name: '', dtype: x.dtype, shape: null }));
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.shape.length);
  const split = ctx.input(1) ? constInts(ctx, 1) : attrInts(ctx.node, 'split');
  const d = x.shape[axis];
  let sizes: Dim[];
  if (split) {
    if (split.length !== n) ctx.fail(`split has ${split.length} entries for ${n} outputs`);
    sizes = split;
  } else if (typeof d === 'number') {
    const each = Math.ceil(d / n);
    sizes = Array.from({ length: n }, (_, i) => Math.min(each, d - each * i));
  } else sizes = new Array<Dim>(n).fill(null);
  return sizes.map((sz) => ({
    name: '',
    dtype: x.dtype,
    shape: x.shape!.map((v, k) => (k === axis ? sz : v)),
  }));
});

registerShapeRule('Pad', (ctx) => {
  const x = ctx.required(0);
  const pads = constInts(ctx, 1);
  if (!x.shape) return [{ name: '', dtype: x.dtype, shape: null }];
  if (!pads) return [{ name: '', dtype: x.dtype, shape: x.shape.map(() => null) }];
  const r = x.shape.length;
  const axes = ctx.input(3) ? constInts(ctx, 3) : [...Array(r).keys()];
  if (!axes) return [{ name: '', dtype: x.dtype, shape: x.shape.map(() => null) }];
  const out = [...x.shape];
  axes.forEach((a, i) => {
    const k = normAxis(ctx, a, r);
    const d = out[k];
    out[k] = typeof d === 'number' ? d + pads[i]! + pads[i + axes.length]! : null;
  });
  return [{ name: '', dtype: x.dtype, shape: out }];
});

registerShapeRule('OneHot', (ctx) => {
  const idx = ctx.required(0);
  const depth = constInts(ctx, 1);
  const values = ctx.required(2);
  if (!idx.shape) return [{ name: '', dtype: values.dtype, shape: null }];
  const r = idx.shape.length + 1;
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), r);
  const out = [...idx.shape];
  out.splice(axis, 0, depth?.length === 1 ? depth[0]! : null);
  return [{ name: '', dtype: values.dtype, shape: out }];
});

registerShapeRule('EyeLike', (ctx) => {
  const x = ctx.required(0);
  const code = attrInt(ctx.node, 'dtype');
  return [
    {
      name: '',
      dtype: code !== undefined ? (dtypeFromCode(code) ?? x.dtype) : x.dtype,
      shape: x.shape,
    },
  ];
});

registerShapeRule('TopK', (ctx) => {
  const x = ctx.required(0);
  const k = constInts(ctx, 1);
  const indices = (shape: Dim[] | null) => ({ name: '', dtype: 'int64' as const, shape });
  if (!x.shape) return [{ name: '', dtype: x.dtype, shape: null }, indices(null)];
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), x.shape.length);
  const shape = x.shape.map((d, i) => (i === axis ? (k?.length === 1 ? k[0]! : null) : d));
  return [{ name: '', dtype: x.dtype, shape }, indices([...shape])];
});

// NonZero: the indices of the non-zero elements, one row per input axis.
registerShapeRule('NonZero', (ctx) => {
  const x = ctx.required(0);
  return [{ name: '', dtype: 'int64', shape: x.shape ? [x.shape.length, null] : [null, null] }];
});
