import type { Value } from '../onnx/builder.js';
import type { LayerContext } from './context.js';

/**
 * timm's PatchEmbed: a conv with kernel = stride = patch (`patch_embed.proj`), then
 * flatten to tokens. x: [N, C, H, W] -> [N, (H/p)(W/p), D].
 */
export function patchEmbed(
  ctx: LayerContext,
  x: Value,
  inC: number,
  dim: number,
  patch: number,
): Value {
  const { b } = ctx;
  const [, , h, w] = x.shape as number[];
  if (h! % patch !== 0 || w! % patch !== 0) {
    throw new RangeError(`patch embed: image ${h}x${w} is not divisible by patch ${patch}`);
  }
  const tokens = (h! / patch) * (w! / patch);
  return b.scope('patch_embed', () =>
    b.scope('proj', () => {
      const fanIn = inC * patch * patch;
      const wt = b.param('weight', [dim, inC, patch, patch], { kind: 'truncNormal', std: 0.02 });
      const bias = b.param('bias', [dim], { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) });
      const y = b.conv(x, wt, bias, { strides: [patch, patch] });
      return b.transpose(b.reshape(y, [-1, dim, tokens]), [0, 2, 1]);
    }),
  );
}
