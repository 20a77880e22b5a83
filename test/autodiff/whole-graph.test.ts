// Whole-graph gradient checks: small networks built with the GraphBuilder, every parameter
// checked against central finite differences of the forward graph (both run through ONNX
// Runtime). Parameters are graph inputs here; the data and labels are constant inputs.
//
// - MLP (Gemm, Relu, Gemm, cross-entropy via LogSoftmax and a one-hot Mul): float64,
//   default tolerances (eps 1e-6, atol 1e-7 + rtol 1e-5).
// - Conv net (Conv, BatchNormalization in training mode, Relu, MaxPool, GlobalAveragePool,
//   Flatten, Gemm, cross-entropy): float32, as ONNX Runtime's CPU Conv is float32-only.
//   eps 3e-3: small enough that no Relu or max-pool switch is crossed for this seed, large
//   enough that float32 rounding of the loss (~1e-7 relative) stays below 1e-4 in the
//   quotient; tolerance atol 2e-3 + rtol 3e-2.
// - ViT block (LayerNormalization, fused qkv MatMul, Reshape/Transpose into heads, Gather
//   of q/k/v, scaled Softmax attention, Erf GELU MLP, residual Adds): float32, as ONNX
//   Runtime's CPU Erf is float32-only; same eps and tolerance.
import { describe, test } from 'node:test';
import type { GraphBuilder, Value } from '../../src/onnx/builder.js';
import { makeTensor } from '../../src/onnx/tensor.js';
import { awayFromZero, checkGradients, positive } from './grad-check.js';

/** Mean cross-entropy of logits [N, K] against one-hot labels [N, K]: −K · mean(y ⊙ log p). */
function crossEntropy(b: GraphBuilder, logits: Value, onehot: Value): Value {
  const k = logits.shape![1] as number;
  const picked = b.op1('ReduceMean', [b.mul(b.logSoftmax(logits, 1), onehot)], { keepdims: 0 });
  return b.mul(picked, b.scalar(-k, logits.dtype));
}

/** One-hot rows for labels 0, 1, 2, … (cycling) of an [n, k] matrix. */
function oneHotRows(n: number, k: number): number[] {
  return Array.from({ length: n * k }, (_, i) => (Math.floor(i / k) % k === i % k ? 1 : 0));
}

const f32 = { dtype: 'float32' as const, eps: 3e-3, atol: 2e-3, rtol: 3e-2 };

describe('whole-graph gradients', () => {
  test('MLP: Gemm + Relu + Gemm + cross-entropy (float64)', async () => {
    await checkGradients({
      inputs: {
        x: { dims: [4, 5], constant: true },
        labels: { dims: [4, 3], constant: true, values: oneHotRows(4, 3) },
        w1: { dims: [6, 5] },
        b1: { dims: [6] },
        w2: { dims: [3, 6] },
        b2: { dims: [3] },
      },
      build: (b, v) => {
        const h = b.relu(b.gemm(v.x!, v.w1!, v.b1!, { transB: 1 }));
        return crossEntropy(b, b.gemm(h, v.w2!, v.b2!, { transB: 1 }), v.labels!);
      },
    });
  });

  test('conv net: Conv + BatchNormalization (training) + Relu + MaxPool + GlobalAveragePool + Gemm (float32)', async () => {
    const bnStats = (c: number) => ({
      [`m${c}`]: { dims: [c], constant: true },
      [`v${c}`]: { dims: [c], constant: true, transform: positive() },
    });
    await checkGradients({
      ...f32,
      inputs: {
        x: { dims: [2, 2, 8, 8], constant: true },
        labels: { dims: [2, 3], constant: true, values: oneHotRows(2, 3) },
        c1w: { dims: [4, 2, 3, 3] },
        c1b: { dims: [4] },
        bn1s: { dims: [4], transform: awayFromZero(0.5) },
        bn1b: { dims: [4] },
        ...bnStats(4),
        c2w: { dims: [6, 4, 3, 3] },
        bn2s: { dims: [6], transform: awayFromZero(0.5) },
        bn2b: { dims: [6] },
        ...bnStats(6),
        fcw: { dims: [3, 6] },
        fcb: { dims: [3] },
      },
      build: (b, v) => {
        const bn = (h: Value, s: Value, bias: Value, m: Value, vr: Value) =>
          b.op(
            'BatchNormalization',
            [h, s, bias, m, vr],
            { training_mode: 1, momentum: 0.9 },
            { outputs: 3 },
          )[0]!;
        let h = b.conv(v.x!, v.c1w!, v.c1b!, { pads: [1, 1, 1, 1] });
        h = b.relu(bn(h, v.bn1s!, v.bn1b!, v.m4!, v.v4!));
        h = b.op1('MaxPool', [h], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
        h = b.conv(h, v.c2w!, null, { pads: [1, 1, 1, 1], strides: [2, 2] });
        h = b.relu(bn(h, v.bn2s!, v.bn2b!, v.m6!, v.v6!));
        const pooled = b.flatten(b.op1('GlobalAveragePool', [h]), 1);
        return crossEntropy(b, b.gemm(pooled, v.fcw!, v.fcb!, { transB: 1 }), v.labels!);
      },
    });
  });

  test('ViT block: LayerNorm + multi-head attention + GELU MLP + residuals (float32)', async () => {
    const [B, T, D, heads] = [2, 4, 8, 2];
    const hd = D / heads;
    await checkGradients({
      ...f32,
      inputs: {
        x: { dims: [B, T, D], constant: true },
        ln1s: { dims: [D] },
        ln1b: { dims: [D] },
        wqkv: { dims: [D, 3 * D], transform: (z) => z * 0.5 },
        bqkv: { dims: [3 * D] },
        wo: { dims: [D, D], transform: (z) => z * 0.5 },
        bo: { dims: [D] },
        ln2s: { dims: [D] },
        ln2b: { dims: [D] },
        w1: { dims: [D, 2 * D], transform: (z) => z * 0.5 },
        b1: { dims: [2 * D] },
        w2: { dims: [2 * D, D], transform: (z) => z * 0.5 },
        b2: { dims: [D] },
      },
      build: (b, v) => {
        const h = b.layerNorm(v.x!, v.ln1s!, v.ln1b!, 1e-5);
        const qkv = b.add(b.matmul(h, v.wqkv!), v.bqkv!);
        // [B, T, 3·D] → [B, T, 3, heads, hd] → [3, B, heads, T, hd]
        const split = b.transpose(b.reshape(qkv, [B, T, 3, heads, hd]), [2, 0, 3, 1, 4]);
        const pick = (i: number) =>
          b.gather(split, b.constant(makeTensor('int64', [], [i]), `qkv${i}`), 0);
        const [q, k, vv] = [pick(0), pick(1), pick(2)];
        const scores = b.mul(
          b.matmul(q, b.transpose(k, [0, 1, 3, 2])),
          b.scalar(1 / Math.sqrt(hd)),
        );
        const att = b.matmul(b.softmax(scores, -1), vv);
        const merged = b.reshape(b.transpose(att, [0, 2, 1, 3]), [B, T, D]);
        const x1 = b.add(v.x!, b.add(b.matmul(merged, v.wo!), v.bo!));
        const h2 = b.layerNorm(x1, v.ln2s!, v.ln2b!, 1e-5);
        const m = b.add(b.matmul(b.gelu(b.add(b.matmul(h2, v.w1!), v.b1!)), v.w2!), v.b2!);
        return b.add(x1, m);
      },
    });
  });
});
