// Rules of the code base that a compiler cannot check.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(path.join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [path.join(dir, e.name)]
        : [],
  );
}

it('drizzle is loaded at run time only through src/core/orm.ts', () => {
  const offenders = sources('src')
    .filter((f) => !f.endsWith(path.join('core', 'orm.ts')))
    .filter((f) => /^import (?!type )[^;]*from 'drizzle-orm/m.test(readFileSync(f, 'utf8')));
  assert.deepEqual(offenders, []);
});

it('routes hold no SQL and services no HTTP', () => {
  for (const file of sources('src/modules')) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('routes.ts'))
      assert.doesNotMatch(text, /from '.*\/store\.ts'|core\/orm\.ts/, `${file} reaches the store`);
    if (file.endsWith('service.ts'))
      assert.doesNotMatch(text, /from 'fastify'/, `${file} depends on Fastify`);
  }
});

it('app.ts wires modules only through their index.ts, and lists every module', () => {
  const app = readFileSync('src/app.ts', 'utf8');
  const reached = [...app.matchAll(/^import (?!type )[^;]*from '\.\/modules\/([^/]+)\/([^']+)'/gm)];
  // The event catalogue is the one exception: the OpenAPI document lists every event's schema.
  const other = reached.filter(
    ([, name, file]) => file !== 'index.ts' && !(name === 'events' && file === 'openapi.ts'),
  );
  assert.deepEqual(
    other.map(([line]) => line),
    [],
  );
  const folders = readdirSync('src/modules', { withFileTypes: true }).filter((e) => e.isDirectory());
  for (const folder of folders) {
    assert.ok(
      reached.some(([, name, file]) => name === folder.name && file === 'index.ts'),
      `src/modules/${folder.name} is not registered in app.ts`,
    );
  }
});

it('no import cycles among the sources, type imports included', () => {
  const graph = new Map<string, string[]>();
  for (const file of sources('src')) {
    const text = readFileSync(file, 'utf8');
    const deps = [...text.matchAll(/^(?:import|export) [^;]*? from '(\.[^']+)'/gms)].map((m) =>
      path.normalize(path.join(path.dirname(file), m[1])),
    );
    graph.set(path.normalize(file), deps);
  }
  const done = new Set<string>();
  const cycles: string[] = [];
  const visit = (file: string, trail: string[]) => {
    if (trail.includes(file)) {
      cycles.push([...trail.slice(trail.indexOf(file)), file].join(' → '));
      return;
    }
    if (done.has(file)) return;
    for (const dep of graph.get(file) ?? []) visit(dep, [...trail, file]);
    done.add(file);
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(cycles, []);
});
