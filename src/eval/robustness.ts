/**
 * Corruption error (Hendrycks & Dietterich, 2019): for corruption c, a model's error rates
 * summed over the severities, divided by the same sum for a reference model,
 * CE_c = Σ_s E_{s,c} / Σ_s E^{ref}_{s,c}; mCE is the mean of CE_c over corruptions. Below
 * 1 (100%) the model is more robust than the reference.
 */
import { DataError } from '../util/errors.js';

/** Result of {@link corruptionErrors}. */
export interface CorruptionErrors {
  /** CE per corruption, in the order of the input. */
  perCorruption: Record<string, number>;
  /** Mean of the CEs. */
  mCE: number;
}

/**
 * CE per corruption and their mean.
 * @param errors - error rates (1 − acc@1) per corruption, one per severity
 * @param reference - the reference model's error rates, same corruptions and severities
 * @example
 * corruptionErrors({ jpeg: [0.1, 0.3] }, { jpeg: [0.2, 0.2] }).mCE // 0.4 / 0.4 = 1
 */
export function corruptionErrors(
  errors: Record<string, readonly number[]>,
  reference: Record<string, readonly number[]>,
): CorruptionErrors {
  const names = Object.keys(errors);
  if (names.length === 0) throw new DataError('corruption errors of no corruption');
  const perCorruption: Record<string, number> = {};
  for (const c of names) {
    const e = errors[c]!;
    const r = reference[c];
    if (!r || r.length !== e.length)
      throw new DataError(
        `corruption '${c}': ${e.length} severities for the model, ${r?.length ?? 0} for the reference`,
      );
    const den = r.reduce((a, b) => a + b, 0);
    if (!(den > 0))
      throw new DataError(`corruption '${c}': the reference makes no error, CE is undefined`);
    perCorruption[c] = e.reduce((a, b) => a + b, 0) / den;
  }
  const mCE = names.reduce((s, c) => s + perCorruption[c]!, 0) / names.length;
  return { perCorruption, mCE };
}
