import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';

/** Whether two paths name the same existing file (so an output never overwrites an input). */
export function samePath(a: string, b: string): boolean {
  if (!existsSync(a) || !existsSync(b)) return resolve(a) === resolve(b);
  return realpathSync(a) === realpathSync(b);
}
