import { attrInt, attrInts, attrString, type Dim } from '../ir.js';
import { constInts, type InferContext, normAxis, registerShapeRule } from '../shape-inference.js';

/**
 * Resize (opsets 11 to 19): each resized dim is `sizes[i]`, or `floor(in · scales[i])`
 * when only scales are given (the spec's formula without a crop region). Dims whose
 * size cannot be known here (a crop region, a size policy that keeps the aspect ratio,
 * scales or sizes computed at run time) are unknown, never guessed.
 */
registerShapeRule('Resize', (ctx) => {
  const x = ctx.required(0);
  if (!x.shape) return [{ name: '', dtype: x.dtype, shape: null }];
  const r = x.shape.length;
  const axes = (attrInts(ctx.node, 'axes') ?? [...Array(r).keys()]).map((a) => normAxis(ctx, a, r));
  const out: Dim[] = [...x.shape];
  const unknownAxes = () => {
    for (const a of axes) out[a] = null;
    return [{ name: '', dtype: x.dtype, shape: out }];
  };
  const sizesIn = ctx.input(3);
  const scalesIn = ctx.input(2);
  // An empty scales tensor (shape [0]) stands for "not given" (opset 11 needs the slot).
  const scalesGiven =
    scalesIn !== undefined && !(scalesIn.shape?.length === 1 && scalesIn.shape[0] === 0);
  if (sizesIn && !scalesGiven) {
    const sizes = constInts(ctx, 3);
    if (!sizes) return unknownAxes();
    if (sizes.length !== axes.length)
      ctx.fail(`sizes has ${sizes.length} entries for ${axes.length} resized axes`);
    if (attrString(ctx.node, 'keep_aspect_ratio_policy', 'stretch') !== 'stretch')
      return unknownAxes();
    axes.forEach((a, i) => (out[a] = sizes[i]!));
    return [{ name: '', dtype: x.dtype, shape: out }];
  }
  if (!scalesGiven || !scalesIn) return ctx.fail('neither scales nor sizes is given');
  const scales = scalesIn.floats;
  if (!scales) return unknownAxes();
  if (scales.length !== axes.length)
    ctx.fail(`scales has ${scales.length} entries for ${axes.length} resized axes`);
  const crop = attrString(ctx.node, 'coordinate_transformation_mode', '') === 'tf_crop_and_resize';
  axes.forEach((a, i) => {
    const d = out[a];
    const s = scales[i]!;
    if (!(s > 0)) ctx.fail(`scale ${s} for axis ${a} is not positive`);
    if (crop) out[a] = null;
    else if (typeof d === 'number') out[a] = Math.floor(d * s);
    else if (s !== 1) out[a] = null;
  });
  return [{ name: '', dtype: x.dtype, shape: out }];
});

/** DepthToSpace / SpaceToDepth on NCHW: channels traded for a block of pixels. */
function blockRule(toSpace: boolean) {
  return (ctx: InferContext) => {
    const x = ctx.required(0);
    const b = attrInt(ctx.node, 'blocksize');
    if (b === undefined || !(b > 0)) return ctx.fail("attribute 'blocksize' must be positive");
    if (!x.shape) return [{ name: '', dtype: x.dtype, shape: null }];
    if (x.shape.length !== 4) ctx.fail(`input must be NCHW, got rank ${x.shape.length}`);
    const [n, c, h, w] = x.shape as [Dim, Dim, Dim, Dim];
    const div = (d: Dim, k: number, what: string): Dim => {
      if (typeof d !== 'number') return null;
      if (d % k !== 0) ctx.fail(`${what} ${d} is not divisible by ${k}`);
      return d / k;
    };
    const mul = (d: Dim, k: number): Dim => (typeof d === 'number' ? d * k : null);
    const shape = toSpace
      ? [n, div(c, b * b, 'channels'), mul(h, b), mul(w, b)]
      : [n, mul(c, b * b), div(h, b, 'height'), div(w, b, 'width')];
    return [{ name: '', dtype: x.dtype, shape }];
  };
}
registerShapeRule('DepthToSpace', blockRule(true));
registerShapeRule('SpaceToDepth', blockRule(false));
