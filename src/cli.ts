// The `mailroom` command: start | api | smtp | imap | worker | migrate | create-admin | openapi.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createMailroom, type Mailroom } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { openDatabase } from './core/db.ts';
import { migrate } from './core/migrate.ts';

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
`;

const COMMANDS = new Set(['start', 'api', 'smtp', 'imap', 'worker', 'migrate', 'create-admin', 'openapi']);

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
      const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
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

/** Exits once what was written to stdout and stderr has left (a pipe is written asynchronously). */
function exitAfterFlush(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

main(process.argv.slice(2)).then(exitAfterFlush, (err) => {
  if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`mailroom: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  exitAfterFlush(1);
});
