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
