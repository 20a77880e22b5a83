// Shared by the DenoiseRep tests.
import assert from 'node:assert/strict';
import { verifyFusion, type VerifyOptions, type VerifyReport } from '../../src/denoise/verify.js';
import type { Tensor } from '../../src/onnx/tensor.js';

/** max |a - b| / max |b| */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

/**
 * Verifies a fused model against the unfused one run with denoising steps (one thread,
 * no latency runs) and asserts that verification passed.
 */
export async function assertFusionVerified(
  opts: Pick<VerifyOptions, 'original' | 'fused' | 'plan' | 'inputs' | 'tolerance'> & {
    values: Map<string, Tensor>;
  },
): Promise<VerifyReport> {
  const report = await verifyFusion({
    original: opts.original,
    fused: opts.fused,
    plan: opts.plan,
    denoisers: opts.values,
    inputs: opts.inputs,
    tolerance: opts.tolerance,
    latencyBatches: [],
    threads: 1,
  });
  assert.ok(report.ok, report.failures.join('; '));
  return report;
}
