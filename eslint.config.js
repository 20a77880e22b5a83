// ESLint flat config: JavaScript recommended rules, typescript-eslint's type-aware
// recommended rules, and the folder layering of src/ (import-x/no-restricted-paths).
import js from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/, lowest first. A folder may import from its own layer's folder and
 * from lower layers, never from a higher layer or from a sibling in its own layer
 * (autodiff, runtime and io are independent of each other). src/index.ts sits on top.
 */
export const LAYERS = [
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
];

/** One no-restricted-paths zone per folder: everything it must not import from. */
export function layerZones(layers = LAYERS) {
  return layers.flatMap((layer, i) =>
    layer.flatMap((folder) => {
      const banned = [...layer.filter((f) => f !== folder), ...layers.slice(i + 1).flat()];
      if (banned.length === 0) return [];
      return {
        target: `./src/${folder}`,
        from: banned.map((f) => `./src/${f}`),
        message:
          `src/${folder} must not import ${banned.map((f) => `src/${f}`).join(', ')}` +
          ' (layering, see README "Layout"): move the shared code down instead.',
      };
    }),
  );
}

/** The layering rule on src/ (test/lint/layers.test.ts runs it on examples). */
export const layering = {
  files: ['src/**/*.ts'],
  plugins: { 'import-x': importX },
  settings: {
    // ESM imports name the emitted .js file; the source is the .ts next to it.
    'import-x/resolver-next': [createNodeResolver({ extensionAlias: { '.js': ['.ts', '.js'] } })],
  },
  rules: {
    'import-x/no-restricted-paths': [
      'error',
      { basePath: import.meta.dirname, zones: layerZones() },
    ],
  },
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'runs/', '.tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        performance: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Shapes print as `[${dims}]` (1,28,28) in messages that users and tests read.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowArray: true }],
    },
  },
  // Plain JavaScript (this file, bin/, scripts/) is outside the TypeScript project.
  { files: ['**/*.js', '**/*.mjs'], extends: [tseslint.configs.disableTypeChecked] },
  {
    // node:test's test() and describe() return promises the runner awaits itself.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
    },
  },
  layering,
);
