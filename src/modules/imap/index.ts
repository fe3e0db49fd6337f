// IMAP and POP3 for hosted mailboxes, on the message store the MX files into and the API reads; the
// folders API; and sent copies of submitted mail.
import type { MailroomModule } from '../../core/module.ts';
import { FOLDER_CHANNEL, notifiedFolders } from '../mailboxes/changes.ts';
import { FolderHub } from './hub.ts';
import { Pop3Server } from './pop3/server.ts';
import { folderRoutes } from './routes.ts';
import { ImapServer } from './server.ts';
import { MailStore } from './service.ts';
import packageJson from '../../../package.json' with { type: 'json' };

export type { ImapServer } from './server.ts';
export type { Pop3Server } from './pop3/server.ts';

declare module '../../core/module.ts' {
  interface Services {
    mailstore: MailStore;
  }
  interface Runtime {
    imap?: ImapServer;
    pop3?: Pop3Server;
  }
}

const PRUNE_QUEUE = 'imap.prune-expunged';

export const imapModule: MailroomModule = {
  name: 'imap',
  create: ({ db, blobs, services }) => ({
    mailstore: new MailStore({ db, blobs, hub: new FolderHub(), inbound: services.inbound }),
  }),
  jobs: ({ jobs, config, clock, services }) => {
    // Daily: expunged UIDs older than the retention are forgotten (their folders' floor rises).
    jobs.define(PRUNE_QUEUE, {
      retryLimit: 3,
      handler: async () => {
        await services.mailstore.pruneExpunged(
          new Date(clock.now().getTime() - config.imap.expungedRetentionMs),
        );
      },
    });
    jobs.schedule(PRUNE_QUEUE, '23 4 * * *');
  },
  async start(ctx) {
    const { roles, services, config, runtime, log, listener, onClose } = ctx;
    const store = services.mailstore;
    // Changes committed by other processes (delivery in a worker, the API, other IMAP nodes).
    if (listener) {
      await listener.subscribe(FOLDER_CHANNEL, (payload) => store.hub.announce(notifiedFolders(payload)));
      listener.onReconnect(() => store.hub.announceAll());
    }
    if (!roles.imap) return;
    const backend = {
      store,
      authenticate: (username: string, password: string, ip: string, sessionId: string) =>
        services.submission.authenticate(username, password, ip, sessionId, 'imap'),
      quota: async (organizationId: string, mailboxId: string) =>
        services.mailboxes.get(organizationId, mailboxId),
    };
    const tls = await ctx.tls();
    const imap = new ImapServer(backend, log.child({ component: 'imap' }), {
      ...config.imap,
      hostname: config.hostname,
      tls,
      version: packageJson.version,
    });
    runtime.imap = imap;
    onClose(() => imap.close());
    const pop3 = new Pop3Server(
      {
        store,
        authenticate: (username, password, ip, sessionId) =>
          services.submission.authenticate(username, password, ip, sessionId, 'pop3'),
      },
      log.child({ component: 'pop3' }),
      {
        hostname: config.hostname,
        host: config.imap.host,
        port: config.imap.pop3Port,
        tlsPort: config.imap.pop3TlsPort,
        tls,
        allowInsecureAuth: config.imap.allowInsecureAuth,
        maxConnections: config.imap.maxConnections,
        maxConnectionsPerIp: config.imap.maxConnectionsPerIp,
      },
    );
    runtime.pop3 = pop3;
    onClose(() => pop3.close());
    // A mailbox suspended, deactivated or deleted (on any process) loses its open IMAP and POP3 sessions.
    const disconnect = (mailboxId: string, reason: string) => {
      imap.disconnect(mailboxId, reason);
      pop3.disconnect(mailboxId, reason);
    };
    runtime.bus?.on((event) => {
      const data = event.data as { mailbox_id?: string; changes?: string[] };
      if (!data.mailbox_id) return;
      if (event.type === 'mailbox.deleted') disconnect(data.mailbox_id, 'The mailbox was deleted');
      // A new password or a revoked app password ends the sessions that logged in with the old ones.
      if (event.type === 'mailbox.app_password_revoked' || data.changes?.includes('password'))
        disconnect(data.mailbox_id, 'The credentials changed; log in again');
      if (event.type !== 'mailbox.updated' || !data.changes?.some((c) => c === 'status' || c === 'is_active'))
        return;
      const mailboxId = data.mailbox_id;
      services.mailboxes
        .get(event.organizationId, mailboxId)
        .then((m) => {
          if (m.status !== 'active' || !m.isActive) disconnect(mailboxId, 'The mailbox may no longer log in');
        })
        .catch(() => disconnect(mailboxId, 'The mailbox was deleted'));
    });
  },
  routes: async (app, { services }) => app.register(folderRoutes(services.mailstore, services.mailboxes)),
};
