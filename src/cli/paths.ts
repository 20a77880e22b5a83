// Every command checks its output paths with one rule (src/util/output-paths.ts): no output
// is an input or another output, and every output's folder exists, before any work.
import { isModelFile } from '../models/load.js';
import type { FlagPath } from '../util/output-paths.js';

export { checkOutputPaths, type FlagPath } from '../util/output-paths.js';

/** The model argument as an input path (none for a preset name). */
export function modelInput(arg: string): FlagPath[] {
  return isModelFile(arg) ? [{ flag: '<model>', path: arg }] : [];
}
