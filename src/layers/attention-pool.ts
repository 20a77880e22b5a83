import type { Value } from '../onnx/builder.js';
import type { LayerContext } from './context.js';
import { linear } from './linear.js';

/**
 * Multi-head attention pooling: one learned query (`query`, [1, 1, D]) attends over the
 * tokens; keys and values are projections of the tokens (`kv`), the pooled vector goes
 * through `proj`. x: [N, T, D] -> [N, D]. The pooling head of the attention probes of
 * "Diffusion Models Beat GANs on Image Classification" and of CLIP's AttentionPool2d,
 * with a learned query instead of the mean token.
 * @param ctx - layer context
 * @param x - tokens [N, T, D] with static T and D
 * @param dim - D
 * @param heads - number of heads, dividing D
 */
export function attentionPool(ctx: LayerContext, x: Value, dim: number, heads: number): Value {
  const { b } = ctx;
  const t = x.shape![1];
  if (typeof t !== 'number') throw new RangeError('attention pool: the token count must be static');
  const hd = dim / heads;
  if (!Number.isInteger(hd)) {
    throw new RangeError(`attention pool: dim ${dim} is not divisible by ${heads} heads`);
  }
  const query = b.param('query', [1, 1, dim], { kind: 'truncNormal', std: 0.02 });
  const q = b.mul(
    b.reshape(linear(ctx, query, 'q', dim, dim, { init: 'trunc02' }), [1, heads, 1, hd]),
    b.scalar(1 / Math.sqrt(hd)),
  );
  // [N, T, 2D] -> [2, N, H, T, hd], split into keys and values.
  const kv = b.transpose(
    b.reshape(linear(ctx, x, 'kv', dim, 2 * dim, { init: 'trunc02' }), [-1, t, 2, heads, hd]),
    [2, 0, 3, 1, 4],
  );
  const [k, v] = b
    .op('Split', [kv, b.ints([1, 1])], { axis: 0 }, { outputs: 2 })
    .map((p) => b.reshape(p, [-1, heads, t, hd]));
  const attn = b.softmax(b.matmul(q, b.transpose(k!, [0, 1, 3, 2])), -1); // [N, H, 1, T]
  const pooled = b.reshape(b.matmul(attn, v!), [-1, dim]); // [N, H, 1, hd] -> [N, D]
  return linear(ctx, pooled, 'proj', dim, dim, { init: 'trunc02' });
}
