// External mail accounts: mailboxes at other providers reached over IMAP and SMTP, tested before they
// are kept, their passwords sealed; Google and Microsoft 365 accounts connected by signing in (OAuth).
import type { MailroomModule } from '../../core/module.ts';
import { DestinationGuard } from '../../core/ssrf.ts';
import { AccountOAuth } from './oauth.ts';
import { accountOAuthRoutes } from './oauth-routes.ts';
import { accountRoutes } from './routes.ts';
import { AccountsService } from './service.ts';
import { AccountMail } from './mail.ts';
import { accountMailRoutes } from './mail-routes.ts';
import { SYNC_CHANNEL } from './sync/context.ts';
import { AccountSyncRunner } from './sync/runner.ts';

const ACCOUNT_CHANGES = new Set(['account.connected', 'account.updated', 'account.deleted']);

declare module '../../core/module.ts' {
  interface Runtime {
    /** The worker's side of external accounts: which it holds, and their connections. */
    accountSync?: AccountSyncRunner;
  }
  interface Services {
    accounts: AccountsService;
    accountOAuth: AccountOAuth;
    accountMail: AccountMail;
  }
}

export const accountsModule: MailroomModule = {
  name: 'accounts',
  create: ({ db, secrets, blobs, services, config }) => {
    const accountOAuth = new AccountOAuth({
      db,
      secrets,
      events: services.events,
      settings: config.oauth,
      publicUrl: config.publicUrl,
      corsOrigins: config.corsOrigins,
    });
    const accounts = new AccountsService({
      db,
      blobs,
      secrets,
      events: services.events,
      oauth: accountOAuth,
      guard: new DestinationGuard({ allowHosts: config.accountAllowHosts, dnsServers: config.dnsServers }),
    });
    return {
      accountOAuth,
      accounts,
      accountMail: new AccountMail({ db, blobs, events: services.events, accounts }),
    };
  },
  async start({ roles, config, db, blobs, services, runtime, log, listener, onClose }) {
    if (!roles.workers) return;
    const runner = new AccountSyncRunner({
      db,
      blobs,
      inbound: services.inbound,
      events: services.events,
      accounts: services.accounts,
      log: log.child({ component: 'account-sync' }),
      settings: config.accountSync,
    });
    runtime.accountSync = runner;
    log.info({ worker: runner.workerId }, 'external accounts: syncing as this worker');
    runner.start();
    onClose(() => runner.stop());
    // An account connected, changed, paused, resumed or deleted on any process is picked up at once.
    runtime.bus?.on((event) => {
      if (ACCOUNT_CHANGES.has(event.type)) void runner.tick().catch(() => {});
    });
    await listener?.subscribe(SYNC_CHANNEL, (accountId) => runner.syncSoon(accountId));
  },
  routes: async (app, { services }) => {
    await app.register(accountRoutes(services.accounts));
    await app.register(accountOAuthRoutes(services.accountOAuth));
    await app.register(accountMailRoutes(services.accountMail));
  },
};
