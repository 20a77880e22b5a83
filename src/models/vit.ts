import { attention } from '../layers/attention.js';
import type { LayerContext } from '../layers/context.js';
import { dropout } from '../layers/dropout.js';
import { mlp } from '../layers/mlp.js';
import { layerNorm } from '../layers/norm.js';
import { patchEmbed } from '../layers/patch-embed.js';
import type { Value } from '../onnx/builder.js';
import { classifierHead } from './head.js';
import type { ModelDef } from './types.js';

export interface VitConfig {
  imageSize: number;
  channels: number;
  patch: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  numClasses: number;
  dropout: number;
  /** LayerNorm epsilon (timm ViT: 1e-6). */
  eps: number;
  bnneck: boolean;
}

/**
 * A Vision Transformer with timm's parameter names: `patch_embed.proj`, `cls_token`,
 * `pos_embed`, pre-norm `blocks.{i}` (norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
 * mlp.fc2), final `norm`, `head`. The feature is the class token after the final norm.
 */
export function vit(cfg: VitConfig, name = 'vit'): ModelDef {
  const tokens = (cfg.imageSize / cfg.patch) ** 2;
  const hidden = Math.round(cfg.dim * cfg.mlpRatio);
  return {
    name,
    family: 'vit',
    inputShape: [cfg.channels, cfg.imageSize, cfg.imageSize],
    numClasses: cfg.numClasses,
    featureDim: cfg.dim,
    bnneck: cfg.bnneck,
    config: { ...cfg },
    build(ctx: LayerContext, input: Value) {
      const { b } = ctx;
      let x = patchEmbed(ctx, input, cfg.channels, cfg.dim, cfg.patch);
      const cls = b.param('cls_token', [1, 1, cfg.dim], { kind: 'truncNormal', std: 0.02 });
      const pos = b.param('pos_embed', [1, tokens + 1, cfg.dim], {
        kind: 'truncNormal',
        std: 0.02,
      });
      // Broadcast the class token over the batch: [1,1,D] -> [N,1,D] via Shape(x)[0].
      const batch = b.slice(b.op1('Shape', [x]), [0], [1], [0]);
      const clsN = b.op1('Expand', [cls, b.concat([batch, b.ints([1, cfg.dim])], 0)]);
      x = b.add(b.concat([clsN, x], 1), pos);
      x = dropout(ctx, x, 'pos_drop', cfg.dropout);
      for (let i = 0; i < cfg.depth; i++) {
        x = b.scope('blocks', () =>
          b.scope(i, () => {
            const n1 = layerNorm(ctx, x, 'norm1', cfg.dim, cfg.eps);
            const y = b.add(
              x,
              b.scope('attn', () =>
                attention(ctx, n1, cfg.dim, cfg.heads, { dropout: cfg.dropout }),
              ),
            );
            const n2 = layerNorm(ctx, y, 'norm2', cfg.dim, cfg.eps);
            return b.add(
              y,
              b.scope('mlp', () => mlp(ctx, n2, cfg.dim, hidden, { dropout: cfg.dropout })),
            );
          }),
        );
      }
      x = layerNorm(ctx, x, 'norm', cfg.dim, cfg.eps);
      const pooled = b.reshape(b.slice(x, [0], [1], [1]), [-1, cfg.dim]);
      return classifierHead(ctx, pooled, cfg.dim, cfg.numClasses, {
        bnneck: cfg.bnneck,
        name: 'head',
        init: 'trunc02',
      });
    },
  };
}
