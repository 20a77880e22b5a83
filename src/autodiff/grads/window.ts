// Shared geometry of sliding-window ops (Conv, MaxPool, AveragePool) for their gradient
// rules: resolved attributes, static shapes, and the ConvTranspose settings that map an
// output-sized gradient back onto the input exactly.
import { GradientError } from '../../util/errors.js';
import type { Value } from '../../onnx/builder.js';
import type { Dim, Node } from '../../onnx/ir.js';

/** Window attributes with defaults filled in and auto_pad resolved to explicit pads. */
export interface Window {
  /** Number of spatial axes. */
  rank: number;
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}], as ONNX. */
  pads: number[];
  /** Static input spatial sizes. */
  inSize: number[];
  /** Static output spatial sizes. */
  outSize: number[];
}

interface WindowAttrs {
  auto_pad: string;
  strides: number[];
  dilations: number[];
  pads: number[];
}

/**
 * Resolves the window attributes of a Conv or pooling node whose input `x` and output `y`
 * have static spatial sizes (the batch and channel axes may be symbolic). auto_pad SAME_*
 * is rejected with a GradientError naming the node: ORT's pools and convs do not agree on
 * how SAME padding treats dilations, so a gradient could silently mismatch the forward.
 */
export function resolveWindow(
  node: Node,
  attrs: Partial<WindowAttrs>,
  kernel: number[],
  x: Value,
  y: Value,
): Window {
  const rank = kernel.length;
  const autoPad = attrs.auto_pad ?? 'NOTSET';
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    throw new GradientError(
      `${node.opType} node '${node.name}': auto_pad ${autoPad} is not supported by its gradient rule; give explicit pads`,
    );
  }
  const strides = attrs.strides?.length ? attrs.strides : Array<number>(rank).fill(1);
  const dilations = attrs.dilations?.length ? attrs.dilations : Array<number>(rank).fill(1);
  const pads =
    autoPad === 'VALID' || !attrs.pads?.length ? Array<number>(2 * rank).fill(0) : attrs.pads;
  const inSize = staticSpatial(node, x, rank);
  const outSize = staticSpatial(node, y, rank);
  return { rank, kernel, strides, dilations, pads, inSize, outSize };
}

function staticSpatial(node: Node, v: Value, rank: number): number[] {
  const s = v.shape;
  const sp: Dim[] | undefined = s?.slice(2);
  if (!s || s.length !== rank + 2 || !sp!.every((d) => typeof d === 'number')) {
    throw new GradientError(
      `${node.opType} node '${node.name}': its gradient needs static spatial sizes, '${v.name}' has shape [${s ?? '?'}]`,
    );
  }
  return sp;
}

/** Effective (dilated) kernel extent along axis i. */
export function effectiveKernel(w: Window, i: number): number {
  return w.dilations[i]! * (w.kernel[i]! - 1) + 1;
}

/**
 * ConvTranspose pads and output_padding that take a gradient of the window op's output
 * back to exactly the input's spatial size. A ConvTranspose with the forward's strides,
 * dilations and pads produces s·(out−1) + eff − pb − pe positions; the remainder of
 * (in + pb + pe − eff) / s, lost to the forward's floor, is added back as output_padding.
 * With ceil_mode the last window may overhang the padded input: the overhang is cropped by
 * enlarging the end pad (those positions lie outside the input and get no gradient).
 */
export function transposeGeometry(w: Window): { pads: number[]; outputPadding: number[] } {
  const pads = [...w.pads];
  const outputPadding: number[] = [];
  for (let i = 0; i < w.rank; i++) {
    const full = w.strides[i]! * (w.outSize[i]! - 1) + effectiveKernel(w, i);
    const rem = w.inSize[i]! + w.pads[i]! + w.pads[i + w.rank]! - full;
    outputPadding.push(Math.max(0, rem));
    if (rem < 0) pads[i + w.rank] = pads[i + w.rank]! - rem;
  }
  return { pads, outputPadding };
}
