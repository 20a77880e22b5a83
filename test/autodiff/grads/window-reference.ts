// Helpers for the Conv / pooling gradient tests: the engine's gradients for a given output
// gradient, and direct float64 reference implementations of the backward passes.
import assert from 'node:assert/strict';
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GraphBuilder, type Value } from '../../../src/onnx/builder.js';
import type { DType } from '../../../src/onnx/dtype.js';
import { makeTensor, type Tensor } from '../../../src/onnx/tensor.js';
import { Session } from '../../../src/runtime/session.js';
import { Rng } from '../../../src/util/rng.js';

/** Random float inputs (N(0,1), or `values`), keyed by name. */
export function randomFeeds(
  specs: Record<string, { dims: number[]; dtype?: DType }>,
  seed: number,
): Record<string, Tensor> {
  const rng = new Rng(seed);
  const out: Record<string, Tensor> = {};
  for (const [name, s] of Object.entries(specs)) {
    const n = s.dims.reduce((p, d) => p * d, 1);
    out[name] = makeTensor(
      s.dtype ?? 'float32',
      s.dims,
      Array.from({ length: n }, () => rng.normal()),
    );
  }
  return out;
}

/**
 * Runs the engine's gradient graph for y = build(inputs) with loss = Σ y ⊙ gy, so the
 * gradient flowing into y is exactly `gy`. Returns y, the gradients of every input, and the
 * backward graph's op types.
 */
export async function gradientsFor(
  feeds: Record<string, Tensor>,
  build: (b: GraphBuilder, v: Record<string, Value>) => Value,
  gy: (yDims: number[]) => number[],
): Promise<{ y: Tensor; grads: Record<string, Float64Array>; ops: string[] }> {
  const b = new GraphBuilder({ seed: 0 });
  const v: Record<string, Value> = {};
  for (const [name, t] of Object.entries(feeds)) v[name] = b.input(name, t.dtype, t.dims);
  const y = build(b, v);
  const yDims = y.shape as number[];
  const r = b.constant(makeTensor(y.dtype, yDims, gy(yDims)), 'gy');
  // Σ y⊙gy written as count · mean(y⊙gy), so that only the ReduceMean and Mul rules are used.
  const count = yDims.reduce((p, d) => p * d, 1);
  b.output(
    b.mul(b.op1('ReduceMean', [b.mul(y, r)], { keepdims: 0 }), b.scalar(count, y.dtype)),
    'loss',
  );
  const { model } = b.build();
  const g = buildGradientGraph(model, {
    loss: 'loss',
    wrt: Object.keys(feeds),
    extraOutputs: [y.name],
  });
  const s = await Session.create(g.model, { threads: 1 });
  const res = await s.run(feeds);
  await s.release();
  const grads: Record<string, Float64Array> = {};
  for (const name of Object.keys(feeds))
    grads[name] = Float64Array.from(res[g.gradOutputs[name]!]!.data as Float32Array);
  return { y: res[y.name]!, grads, ops: g.model.graph.nodes.map((n) => n.opType) };
}

/** A 2-D window geometry (1-D ops use height 1, kernel height 1). */
export interface Geo2 {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
}

/**
 * Reference Conv backward in float64: for y[n,o,p,q] = Σ w[o,c,kh,kw] x[n, g·Cg + c, ih, iw]
 * (+ b[o]) with ih = p·s − pad_top + kh·d, returns dx, dw, db for the given dy.
 */
export function convBackwardRef(
  x: ArrayLike<number>,
  xd: [number, number, number, number],
  w: ArrayLike<number>,
  wd: [number, number, number, number],
  geo: Geo2,
  group: number,
  gy: ArrayLike<number>,
  yd: [number, number, number, number],
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const [N, C, H, W] = xd;
  const [O, Cg, KH, KW] = wd;
  const [, , OH, OW] = yd;
  const og = O / group;
  const dx = new Float64Array(N * C * H * W);
  const dw = new Float64Array(O * Cg * KH * KW);
  const db = new Float64Array(O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const grp = Math.floor(o / og);
      for (let p = 0; p < OH; p++) {
        for (let q = 0; q < OW; q++) {
          const g = gy[((n * O + o) * OH + p) * OW + q]!;
          db[o]! += g;
          for (let c = 0; c < Cg; c++) {
            const ci = grp * Cg + c;
            for (let kh = 0; kh < KH; kh++) {
              const ih = p * geo.strides[0] - geo.pads[0] + kh * geo.dilations[0];
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = q * geo.strides[1] - geo.pads[1] + kw * geo.dilations[1];
                if (iw < 0 || iw >= W) continue;
                const xi = ((n * C + ci) * H + ih) * W + iw;
                const wi = ((o * Cg + c) * KH + kh) * KW + kw;
                dw[wi]! += g * x[xi]!;
                dx[xi]! += g * w[wi]!;
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}

/**
 * Reference AveragePool backward in float64 by the ONNX definition: every output position
 * averages the window elements inside x, divided by their number (count_include_pad 0) or
 * by the size of the window clipped to the padded input (count_include_pad 1).
 */
export function averagePoolBackwardRef(
  xd: [number, number, number, number],
  geo: Geo2,
  countIncludePad: boolean,
  gy: ArrayLike<number>,
  yd: [number, number, number, number],
): Float64Array {
  const [N, C, H, W] = xd;
  const [, , OH, OW] = yd;
  const dx = new Float64Array(N * C * H * W);
  for (let nc = 0; nc < N * C; nc++) {
    for (let p = 0; p < OH; p++) {
      const h0 = p * geo.strides[0] - geo.pads[0];
      const h1 = Math.min(h0 + geo.kernel[0], H + geo.pads[2]);
      for (let q = 0; q < OW; q++) {
        const w0 = q * geo.strides[1] - geo.pads[1];
        const w1 = Math.min(w0 + geo.kernel[1], W + geo.pads[3]);
        const inside: number[] = [];
        for (let h = Math.max(h0, 0); h < Math.min(h1, H); h++) {
          for (let w = Math.max(w0, 0); w < Math.min(w1, W); w++) inside.push((nc * H + h) * W + w);
        }
        const div = countIncludePad ? (h1 - h0) * (w1 - w0) : inside.length;
        const g = gy[(nc * OH + p) * OW + q]!;
        for (const i of inside) dx[i]! += g / div;
      }
    }
  }
  return dx;
}

/** Asserts |a − b| ≤ atol + rtol·|b| elementwise; returns the worst absolute error. */
export function assertClose(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  rtol: number,
  atol: number,
  what: string,
): number {
  assert.equal(a.length, b.length, `${what}: ${a.length} elements vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i]! - b[i]!);
    worst = Math.max(worst, err);
    assert.ok(
      err <= atol + rtol * Math.abs(b[i]!),
      `${what}[${i}]: got ${a[i]}, expected ${b[i]} (err ${err})`,
    );
  }
  return worst;
}
