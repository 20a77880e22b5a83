import type { Value } from '../onnx/builder.js';
import type { LayerContext } from './context.js';
import { dropout } from './dropout.js';
import { linear } from './linear.js';

/**
 * Multi-head self-attention with a fused qkv projection (timm's `Attention`: `qkv`,
 * `proj`). x: [N, T, D] -> [N, T, D].
 */
export function attention(
  ctx: LayerContext,
  x: Value,
  dim: number,
  heads: number,
  opts: { dropout?: number } = {},
): Value {
  const { b } = ctx;
  const t = x.shape![1] as number;
  const hd = dim / heads;
  if (!Number.isInteger(hd))
    throw new RangeError(`attention: dim ${dim} is not divisible by ${heads} heads`);
  const qkv = linear(ctx, x, 'qkv', dim, 3 * dim, { init: 'trunc02' });
  // [N, T, 3, H, hd] -> [3, N, H, T, hd] in one transpose (as timm does), then a split of
  // contiguous blocks along axis 0: much cheaper than splitting the strided middle axis.
  const heads5 = b.transpose(b.reshape(qkv, [-1, t, 3, heads, hd]), [2, 0, 3, 1, 4]);
  const [q, k, v] = b
    .op('Split', [heads5, b.ints([1, 1, 1])], { axis: 0 }, { outputs: 3 })
    .map((p) => b.reshape(p, [-1, heads, t, hd]));
  const scaled = b.mul(q!, b.scalar(1 / Math.sqrt(hd)));
  const scores = b.matmul(scaled, b.transpose(k!, [0, 1, 3, 2]));
  const attn = dropout(ctx, b.softmax(scores, -1), 'attn_drop', opts.dropout ?? 0);
  const out = b.reshape(b.transpose(b.matmul(attn, v!), [0, 2, 1, 3]), [-1, t, dim]);
  return dropout(
    ctx,
    linear(ctx, out, 'proj', dim, dim, { init: 'trunc02' }),
    'proj_drop',
    opts.dropout ?? 0,
  );
}
