// The `mailroom` command: start | api | smtp | imap | worker | migrate | create-admin | openapi | backup |
// restore.
import {
  createReadStream,
  createWriteStream,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { parseArgs } from 'node:util';
import { createMailroom, type Mailroom } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { openDatabase } from './core/db.ts';
import { AppError } from './core/errors.ts';
import { migrate } from './core/migrate.ts';
import { ArchiveError } from './modules/backups/archive.ts';

const USAGE = `usage: mailroom <command>

  start          API, workers and (as they land) the mail servers, in one process
  api            the HTTP API only
  smtp           the mail servers only: MX (inbound SMTP) and submission (authenticated SMTP)
  imap           the mailbox access servers only: IMAP and POP3
  worker         job workers only
  migrate        apply database migrations and exit
  create-admin   --email E [--password P | MAILROOM_ADMIN_PASSWORD] [--name N] [--organization O]
                 create or promote a platform administrator who owns an organisation
  openapi        [--out FILE] print the OpenAPI document
  backup         --organization ID|SLUG --out FILE
                 write the organisation's whole data (every module, raw messages) to an archive
  restore        --file FILE [--new-organization] [--name N] [--slug S] [--source-key-file F]
                 restore an archive: as the same organisation with its ids (default; it must not be
                 here), or as a new organisation beside what is here. When the archive comes from an
                 installation with another MAILROOM_SECRET_KEY, give that key (64 hex) in a file or in
                 MAILROOM_BACKUP_SOURCE_KEY
`;

const COMMANDS = new Set([
  'start',
  'api',
  'smtp',
  'imap',
  'worker',
  'migrate',
  'create-admin',
  'openapi',
  'backup',
  'restore',
]);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (!COMMANDS.has(command)) {
    process.stderr.write(`unknown command: ${command}\n\n${USAGE}`);
    return 2;
  }
  const config = loadConfig();
  switch (command) {
    case 'start':
      return serve(
        await createMailroom(config, { http: true, workers: true, smtp: true, submission: true, imap: true }),
      );
    case 'smtp':
      return serve(
        await createMailroom(config, { http: false, workers: false, smtp: true, submission: true }),
      );
    case 'imap':
      return serve(await createMailroom(config, { http: false, workers: false, imap: true }));
    case 'api':
      return serve(await createMailroom(config, { http: true, workers: false }));
    case 'worker':
      return serve(await createMailroom(config, { http: false, workers: true }));
    case 'migrate': {
      const database = await openDatabase({
        url: config.databaseUrl,
        dataDir: config.dataDir,
        sharedBuffers: config.pgliteSharedBuffers,
      });
      try {
        const { applied } = await migrate(database);
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'up to date\n');
      } finally {
        await database.close();
      }
      return 0;
    }
    case 'create-admin':
      return createAdmin(config, rest);
    case 'backup':
      return backup(config, rest);
    case 'restore':
      return restore(config, rest);
    case 'openapi': {
      const { values } = parseArgs({ args: rest, options: { out: { type: 'string' } } });
      const app = await createMailroom(
        { ...config, logLevel: 'warn' },
        { http: true, workers: false, inMemory: !config.databaseUrl },
      );
      try {
        const doc = JSON.stringify(app.http!.swagger(), null, 2) + '\n';
        if (values.out) writeFileSync(values.out, doc);
        else process.stdout.write(doc);
      } finally {
        await app.close();
      }
      return 0;
    }
    default:
      return 2;
  }
}

async function serve(app: Mailroom): Promise<number> {
  await app.listen();
  if (!app.http && !app.smtp && !app.submission && !app.imap) app.log.info('workers running');
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      app.log.info({ signal }, 'shutting down');
      app.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

async function createAdmin(config: ReturnType<typeof loadConfig>, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      email: { type: 'string' },
      password: { type: 'string' },
      name: { type: 'string' },
      organization: { type: 'string' },
    },
  });
  const password = values.password ?? process.env.MAILROOM_ADMIN_PASSWORD;
  if (!values.email || !password) {
    process.stderr.write('create-admin needs --email and --password (or MAILROOM_ADMIN_PASSWORD)\n');
    return 2;
  }
  const app = await createMailroom({ ...config, logLevel: 'warn' }, { http: false, workers: false });
  try {
    const { identity, organizations } = app.services;
    const user = await identity.createAdmin({ email: values.email, password, name: values.name });
    const existing = await organizations.listForUser(user.id, { page: 1, page_size: 1 });
    const org = existing.total
      ? existing.items[0]
      : await organizations.create(user.id, { name: values.organization ?? 'Default' });
    process.stdout.write(
      `administrator ${user.email} (${user.id}) owns organisation ${org.name} (${org.id})\n`,
    );
    return 0;
  } finally {
    await app.close();
  }
}

/** One line of progress on stderr, rewritten in place on a terminal. */
function progressLine(text: string, last = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${text}\x1b[K${last ? '\n' : ''}`);
  else process.stderr.write(`${text}\n`);
}

const megabytes = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`;

async function backup(config: ReturnType<typeof loadConfig>, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { organization: { type: 'string' }, out: { type: 'string' } },
  });
  if (!values.organization || !values.out) {
    process.stderr.write('backup needs --organization (id or slug) and --out FILE\n');
    return 2;
  }
  const app = await createMailroom({ ...config, logLevel: 'warn' }, { http: false, workers: false });
  // Written beside the file and renamed at the end: a file of that name is always a whole archive.
  const partial = `${values.out}.partial`;
  try {
    const { backups } = app.services;
    const organization = await backups.findOrganization(values.organization);
    const started = performance.now();
    const out = createWriteStream(partial);
    let written = 0;
    out.on('drain', () => {
      written = out.bytesWritten;
    });
    const result = await backups.backupTo(organization.id, out, {
      onTable: (table, done, total) =>
        progressLine(`backup: ${done}/${total} tables (${table}), ${megabytes(out.bytesWritten || written)}`),
    });
    renameSync(partial, values.out);
    const seconds = (performance.now() - started) / 1000;
    progressLine(
      `backup: ${organization.slug} (${organization.id}): ${result.trailer.rows} rows, ${megabytes(result.trailer.binary_bytes)} of messages, ${megabytes(result.stats.archiveBytes)} archive in ${seconds.toFixed(1)} s`,
      true,
    );
    process.stdout.write(`${values.out} sha256 ${result.stats.archiveSha256}\n`);
    return 0;
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  } finally {
    await app.close();
  }
}

async function restore(config: ReturnType<typeof loadConfig>, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      file: { type: 'string' },
      'new-organization': { type: 'boolean' },
      name: { type: 'string' },
      slug: { type: 'string' },
      'source-key-file': { type: 'string' },
    },
  });
  if (!values.file) {
    process.stderr.write('restore needs --file FILE\n');
    return 2;
  }
  const sourceKey = values['source-key-file']
    ? readFileSync(values['source-key-file'], 'utf8').trim()
    : process.env.MAILROOM_BACKUP_SOURCE_KEY?.trim() || undefined;
  const app = await createMailroom({ ...config, logLevel: 'warn' }, { http: false, workers: false });
  try {
    const started = performance.now();
    let rows = 0;
    const result = await app.services.backups.restoreFrom(
      createReadStream(values.file),
      {
        mode: values['new-organization'] ? 'new_organization' : 'keep_ids',
        name: values.name,
        slug: values.slug,
        sourceKey,
      },
      {
        onRows: (n) => {
          rows += n;
          if (rows % 10_000 < n) progressLine(`restore: ${rows} rows`);
        },
      },
    );
    const seconds = (performance.now() - started) / 1000;
    progressLine(
      `restore: ${result.rows} rows, ${megabytes(result.binary_bytes)} of messages in ${seconds.toFixed(1)} s; secrets ${result.secrets}`,
      true,
    );
    const org = result.organization;
    process.stdout.write(`restored organisation ${org.name} (${org.slug}, ${org.id})\n`);
    return 0;
  } finally {
    await app.close();
  }
}

/** Exits once what was written to stdout and stderr has left (a pipe is written asynchronously). */
function exitAfterFlush(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

main(process.argv.slice(2)).then(exitAfterFlush, (err) => {
  if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
  // A refusal (the organisation is here already, a damaged archive, a missing key) is said, not traced.
  else if (err instanceof AppError || err instanceof ArchiveError)
    process.stderr.write(`mailroom: ${err.message}\n`);
  else process.stderr.write(`mailroom: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  exitAfterFlush(1);
});
