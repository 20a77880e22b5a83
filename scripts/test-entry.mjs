// Imports the test files given on the command line into one process, each inside a suite
// named after its path, so that the file's top-level hooks (before/after) and tests belong
// to it alone and the report groups tests by file. Run by scripts/run-tests.mjs with
// `node --import tsx --test-reporter=spec`.
import { describe } from 'node:test';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

for (const file of process.argv.slice(2)) {
  describe(file, async () => {
    await import(pathToFileURL(resolve(file)).href);
  });
}
