import type { Value } from '../onnx/builder.js';
import type { LayerContext } from './context.js';
import { dropout } from './dropout.js';
import { linear } from './linear.js';

/** timm's Mlp: fc1 -> GELU -> fc2 (dropout after each when set). */
export function mlp(
  ctx: LayerContext,
  x: Value,
  dim: number,
  hidden: number,
  opts: { dropout?: number } = {},
): Value {
  const { b } = ctx;
  const p = opts.dropout ?? 0;
  const h = dropout(
    ctx,
    b.gelu(linear(ctx, x, 'fc1', dim, hidden, { init: 'trunc02' })),
    'drop1',
    p,
  );
  return dropout(ctx, linear(ctx, h, 'fc2', hidden, dim, { init: 'trunc02' }), 'drop2', p);
}
