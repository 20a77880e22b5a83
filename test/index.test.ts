// The package's public entry: a user's whole workflow (build a model, plan the
// conversion, fit the closed-form denoisers on its own features, fuse, verify) through
// `src/index.ts` alone; the entry listing by name exactly what README.md's "API" section
// documents; and the built entry (`denoiserep`, from dist/) exporting the same names.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';
import * as api from '../src/index.js';

const root = join(import.meta.dirname, '..');

/** Names as the README writes them: `name`, `type Name`, `layers.name`. */
interface ApiNames {
  values: string[];
  types: string[];
}

/**
 * The backticked names in the list items of README.md's "## API" section, split into
 * values and types (`type X`); each name may appear once.
 */
function readmeApi(): ApiNames {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = /^## API\n([^]*?)(?=^## )/m.exec(readme);
  assert.ok(section, 'README.md has no "## API" section');
  const items = section[1]!.split(/\n(?=- )/).filter((l) => l.startsWith('- '));
  const names: ApiNames = { values: [], types: [] };
  for (const item of items) {
    for (const [, token] of item.matchAll(/`([^`]+)`/g)) {
      const m = /^(type )?([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)?)$/.exec(token!);
      assert.ok(m, `README API list: \`${token}\` is not a name (write prose outside backticks)`);
      (m[1] ? names.types : names.values).push(m[2]!);
    }
  }
  const all = [...names.values, ...names.types];
  assert.deepEqual(
    all.filter((n, i) => all.indexOf(n) !== i),
    [],
    'names listed twice in the README API list',
  );
  return names;
}

/**
 * The names a module exports, read from its export declarations (no `export *`: every
 * name is listed). A namespace (`import * as m from ...; export { m }`) contributes `m`
 * and `m.name` for each name of its module, read the same way.
 */
function moduleExports(file: string): ApiNames {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const namespaces = new Map<string, string>();
  const names: ApiNames = { values: [], types: [] };
  for (const st of sf.statements) {
    if (
      ts.isImportDeclaration(st) &&
      st.importClause?.namedBindings &&
      ts.isNamespaceImport(st.importClause.namedBindings)
    ) {
      const spec = (st.moduleSpecifier as ts.StringLiteral).text.replace(/\.js$/, '.ts');
      namespaces.set(st.importClause.namedBindings.name.text, join(dirname(file), spec));
    }
    if (!ts.isExportDeclaration(st)) continue;
    const clause = st.exportClause;
    assert.ok(
      clause && ts.isNamedExports(clause),
      `${file}: '${st.getText(sf)}' exports without naming what (list the names)`,
    );
    for (const el of clause.elements) {
      const name = el.name.text;
      const ns = st.moduleSpecifier ? undefined : namespaces.get(name);
      if (ns) {
        const inner = moduleExports(ns);
        names.values.push(name, ...inner.values.map((n) => `${name}.${n}`));
        names.types.push(...inner.types.map((n) => `${name}.${n}`));
      } else (st.isTypeOnly || el.isTypeOnly ? names.types : names.values).push(name);
    }
  }
  return names;
}

const sorted = (xs: Iterable<string>) => [...xs].sort();

describe('public API', () => {
  test('build → plan → closed-form fit → fuse → verify, from the package entry alone', async () => {
    const b = new api.GraphBuilder({ seed: 3 });
    const x = b.input('input', 'float32', ['N', 6]);
    const w1 = b.scope('fc1', () => b.param('weight', [8, 6], { kind: 'uniform', bound: 0.5 }));
    const b1 = b.scope('fc1', () => b.param('bias', [8], { kind: 'uniform', bound: 0.5 }));
    const h = b.relu(b.gemm(x, w1, b1, { transB: 1 }));
    const w2 = b.scope('fc2', () => b.param('weight', [3, 8], { kind: 'uniform', bound: 0.5 }));
    b.output(b.gemm(h, w2, null, { transB: 1 }), 'y');
    const { model } = b.build();

    const plan = api.planConversion(model.graph, { filter: 'all' });
    assert.deepEqual(
      plan.layers.map((p) => [p.layer.name, p.t]),
      [
        ['fc1', 2],
        ['fc2', 1],
      ],
    );
    // Features with a low-variance direction, so the MSE-optimal denoiser is not ~0.
    const rng = new api.Rng(5);
    const n = 512;
    const data = rng.fillNormal(new Float32Array(n * 6));
    for (let i = 0; i < n; i++) data[i * 6 + 5]! *= 0.01;
    const stats = await api.collectMoments(model, plan, [{ input: api.float32([n, 6], data) }], {
      session: { threads: 1 },
    });
    const { values } = await api.fitClosedForm(plan, stats, { threads: 1 });
    const fused = api.fuseModel(model, plan, values);
    const report = await api.verifyFusion({
      original: model,
      fused,
      plan,
      denoisers: values,
      inputs: { input: api.float32([16, 6], data.subarray(0, 96)) },
      latencyBatches: [],
      threads: 1,
    });
    assert.ok(report.ok, report.failures.join('; '));
    assert.deepEqual(report.topology.differences, []);
    // Fusion changed the weights (the low-variance input direction is shrunk).
    const before = model.graph.initializers.get('fc1.weight')!.data as Float32Array;
    const after = fused.graph.initializers.get('fc1.weight')!.data as Float32Array;
    assert.ok(api.relativeWeightChange(before, after) > 1e-5);
  });

  test('src/index.ts exports by name exactly the names README.md lists under "API"', () => {
    const readme = readmeApi();
    const entry = moduleExports(join(root, 'src', 'index.ts'));
    assert.deepEqual(sorted(entry.values), sorted(readme.values), 'values: entry vs README');
    assert.deepEqual(sorted(entry.types), sorted(readme.types), 'types: entry vs README');
    // What the entry gives at run time: the README's values, no more (types leave no trace).
    const top = readme.values.filter((n) => !n.includes('.'));
    assert.deepEqual(sorted(Object.keys(api)), sorted(top));
    const layerNames = readme.values.filter((n) => n.startsWith('layers.'));
    assert.deepEqual(sorted(Object.keys(api.layers).map((n) => `layers.${n}`)), sorted(layerNames));
    // A curated list: well under the ~590 names that `export *` of every folder gave.
    assert.ok(top.length > 50 && top.length < 200, `${top.length} top-level values`);
  });

  test('the built entry exports what src/index.ts exports', (t) => {
    if (!existsSync('dist/index.js')) {
      t.skip('dist/ not built (npm ci builds it)');
      return;
    }
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('denoiserep'); console.log(JSON.stringify(Object.keys(m).sort()));",
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      JSON.parse(r.stdout),
      Object.keys(api).sort(),
      'dist/index.js differs from src/index.ts (after a change to the entry: npm run build)',
    );
  });
});
