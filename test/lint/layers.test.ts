// The layering rule of eslint.config.js (import-x/no-restricted-paths over src/) catches an
// import that goes up a layer or across to a sibling, and lets downward imports through.
// The examples are linted as if they were files of src/; the modules they import are real,
// so this also shows the resolver finds a `.ts` source behind a `.js` import (an import it
// could not resolve would pass unchecked).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';

const root = join(import.meta.dirname, '..', '..');
// Imported by URL so that TypeScript does not look for types of the plain-JS config.
const configUrl = new URL('../../eslint.config.js', import.meta.url).href;
const config = (await import(configUrl)) as { layering: Linter.Config; LAYERS: string[][] };

const eslint = new ESLint({
  cwd: root,
  overrideConfigFile: true,
  overrideConfig: [
    { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } },
    config.layering,
  ],
});

/** The layering messages for `code` linted as the file `file` (relative to the root). */
async function violations(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, file) });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe('layering (import-x/no-restricted-paths)', () => {
  test('the layers are the documented order, each folder once', () => {
    assert.deepEqual(config.LAYERS, [
      ['util'],
      ['onnx'],
      ['autodiff', 'runtime', 'io'],
      ['layers'],
      ['models'],
      ['data'],
      ['eval'],
      ['train'],
      ['denoise'],
      ['diffusion'],
      ['experiments'],
      ['cli'],
    ]);
  });

  const refused: [string, string, string][] = [
    ['src/util/example.ts', '../onnx/ir.js', 'src/util must not import'],
    ['src/onnx/example.ts', '../denoise/fuse.js', 'src/onnx must not import'],
    ['src/onnx/shape-rules/example.ts', '../../runtime/session.js', 'src/onnx must not import'],
    ['src/autodiff/example.ts', '../runtime/session.js', 'src/autodiff must not import'],
    ['src/runtime/example.ts', '../io/safetensors.js', 'src/runtime must not import'],
    ['src/models/example.ts', '../data/transforms.js', 'src/models must not import'],
    ['src/eval/example.ts', '../cli/index.js', 'src/eval must not import'],
    ['src/denoise/example.ts', '../diffusion/schedule.js', 'src/denoise must not import'],
    ['src/diffusion/example.ts', '../experiments/probe.js', 'src/diffusion must not import'],
  ];
  for (const [file, from, message] of refused) {
    test(`${file} importing ${from} is an error`, async () => {
      const found = await violations(file, `import * as m from '${from}';\nexport { m };\n`);
      assert.equal(found.length, 1, found.join('\n'));
      assert.match(found[0]!, /^import-x\/no-restricted-paths: /);
      assert.ok(found[0]!.includes(message), found[0]);
    });
  }

  test('type-only imports count too', async () => {
    const found = await violations(
      'src/layers/example.ts',
      `import type { ModelDef } from '../models/types.js';\nexport type D = ModelDef;\n`,
    );
    assert.equal(found.length, 1, found.join('\n'));
  });

  const allowed: [string, string][] = [
    ['src/onnx/example.ts', '../util/rng.js'],
    ['src/layers/example.ts', '../autodiff/engine.js'],
    ['src/layers/example.ts', '../runtime/session.js'],
    ['src/models/example.ts', '../layers/linear.js'],
    ['src/denoise/example.ts', '../eval/retrieval.js'],
    ['src/diffusion/example.ts', '../denoise/schedule.js'],
    ['src/experiments/example.ts', '../diffusion/sampler.js'],
    ['src/cli/example.ts', '../experiments/table.js'],
    ['src/cli/example.ts', '../cli/index.js'],
    ['src/index.ts', './cli/index.js'],
    ['src/util/example.ts', 'node:fs'],
  ];
  for (const [file, from] of allowed) {
    test(`${file} importing ${from} is allowed`, async () => {
      assert.deepEqual(
        await violations(file, `import * as m from '${from}';\nexport { m };\n`),
        [],
      );
    });
  }
});
