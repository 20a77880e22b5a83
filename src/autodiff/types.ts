import type { GraphBuilder, Value } from '../onnx/builder.js';
import type { AttrValue, Node } from '../onnx/ir.js';

/**
 * What a gradient rule sees of one forward node, in ONNX Runtime's gradient-builder
 * vocabulary: `I(i)` forward input, `O(i)` forward output, `GO(i)` gradient flowing into
 * output i, and the builder `b` that appends backward nodes to the same graph.
 */
export interface GradContext {
  readonly node: Node;
  readonly b: GraphBuilder;
  /** Forward input i, or null when the optional input is omitted. */
  I(i: number): Value | null;
  /** Forward output i. */
  O(i: number): Value;
  /** Gradient of the loss with respect to output i, or null when none flows there. */
  GO(i: number): Value | null;
  /** Whether input i needs a gradient (it lies on a path from a parameter). */
  needsGrad(i: number): boolean;
  /** The node's attributes as plain values (ints, floats, strings, lists, tensors). */
  attrs<T = Record<string, unknown>>(): Partial<T>;
  /** Number of inputs given (trailing omitted ones excluded). */
  readonly inputCount: number;
}

/**
 * A gradient rule: returns, aligned with the node's inputs, the gradient of the loss
 * with respect to each input, or null where an input gets none. The engine sums
 * gradients that meet at one value and undoes broadcasting, so a rule may return a
 * gradient of the broadcast (output) shape for a broadcast input.
 */
export interface GradRule {
  readonly opType: string;
  grad(ctx: GradContext): (Value | null)[];
}

/** Plain JavaScript value of an attribute. */
export function attrPlain(a: AttrValue): unknown {
  return a.value;
}
