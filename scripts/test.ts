// `npm test`: every suite on embedded PGlite, then, when DATABASE_URL is set, every suite again on
// PostgreSQL (each test app gets its own fresh database there).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createMailroom } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';

const files = process.argv.slice(2);
const targets = files.length ? files : ['test/**/*.test.ts'];

// A migrated embedded database that each test copies instead of running initdb (seconds) itself.
const template = mkdtempSync(path.join(tmpdir(), 'mailroom-template-'));
const config = loadConfig({ MAILROOM_DATA_DIR: template, MAILROOM_LOG_LEVEL: 'silent' }, null);
const app = await createMailroom(config, { http: false, workers: false });
await app.close();

function run(engine: 'pglite' | 'postgres'): number {
  process.stdout.write(`\n=== suites on ${engine} ===\n`);
  const result = spawnSync(
    process.execPath,
    // Two files at a time: most of a suite's time is waiting on sockets and the database, so two share
    // the machine's two cores well (one at a time ran past ten minutes per engine).
    ['--test', '--test-reporter=spec', '--test-timeout=120000', '--test-concurrency=2', ...targets],
    {
      stdio: 'inherit',
      env: { ...process.env, MAILROOM_TEST_ENGINE: engine, MAILROOM_TEST_PGLITE_TEMPLATE: template },
    },
  );
  return result.status ?? 1;
}

let status = run('pglite');
if (process.env.DATABASE_URL) status = run('postgres') || status;
rmSync(template, { recursive: true, force: true });
process.exit(status);
