// SQL migrations from migrations/*.sql, applied in name order, each in its own transaction,
// under an advisory lock so that several processes starting at once apply each file exactly once.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Database } from './db.ts';

const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');
const LOCK_KEY = 0x6d61696c; // "mail"

export interface MigrationResult {
  applied: string[];
}

export async function migrate(database: Database, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  return database.withAdvisoryLock(LOCK_KEY, async (exec) => {
    await exec(
      `create table if not exists schema_migrations (
         version text primary key,
         applied_at timestamptz not null default now()
       )`,
    );
    const done = new Set(
      (await database.query<{ version: string }>('select version from schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const applied: string[] = [];
    for (const file of files) {
      const version = file.replace(/\.sql$/, '');
      if (done.has(version)) continue;
      const body = readFileSync(path.join(dir, file), 'utf8');
      const escaped = version.replace(/'/g, "''");
      try {
        await exec(
          `begin;\n${body}\n;insert into schema_migrations (version) values ('${escaped}');\ncommit;`,
        );
      } catch (err) {
        await exec('rollback').catch(() => {});
        throw new Error(`migration ${file} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(version);
    }
    return { applied };
  });
}
