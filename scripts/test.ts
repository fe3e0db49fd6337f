// `npm test`: every suite on embedded PGlite, then, when DATABASE_URL is set, every suite again on
// PostgreSQL (each test app gets its own fresh database there).
import { spawnSync } from 'node:child_process';
import { globSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createMailroom } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';

const files = process.argv.slice(2);

// A migrated embedded database that each test copies instead of running initdb (seconds) itself.
const template = mkdtempSync(path.join(tmpdir(), 'mailroom-template-'));
const config = loadConfig({ MAILROOM_DATA_DIR: template, MAILROOM_LOG_LEVEL: 'silent' }, null);
const app = await createMailroom(config, { http: false, workers: false });
await app.close();

/**
 * Suites of several workers each, run one at a time after the rest: side by side, the multi-worker suite's
 * deliveries stalled past its deadline (reproduced; the cause is not found yet).
 */
const ALONE = ['test/modules/inbound/multi-worker.test.ts', 'test/modules/delivery/limits.test.ts'];

function run(engine: 'pglite' | 'postgres'): number {
  process.stdout.write(`\n=== suites on ${engine} ===\n`);
  const test = (args: string[]) =>
    spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-timeout=120000', ...args], {
      stdio: 'inherit',
      env: { ...process.env, MAILROOM_TEST_ENGINE: engine, MAILROOM_TEST_PGLITE_TEMPLATE: template },
    }).status ?? 1;
  if (files.length) return test(files);
  // Two files at a time: most of a suite's time is waiting on sockets and the database, so two share the
  // machine's two cores well (one at a time ran past ten minutes per engine).
  const together = globSync('test/**/*.test.ts').filter((file) => !ALONE.includes(file));
  const first = test(['--test-concurrency=2', ...together]);
  return test(['--test-concurrency=1', ...ALONE]) || first;
}

let status = run('pglite');
if (process.env.DATABASE_URL) status = run('postgres') || status;
rmSync(template, { recursive: true, force: true });
process.exit(status);
