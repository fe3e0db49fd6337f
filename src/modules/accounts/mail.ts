// An external account's mail through the API: its folders and synced messages, changes (read, flagged,
// moved, deleted) made on the remote server first and then recorded here, and sending through the
// account's own SMTP server with a copy in its Sent folder. Each change opens a short connection of its
// own beside the sync's (one at a time per account in this process); the sync sees the result as
// already known and announces nothing twice.
import { randomBytes } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import type { BlobStore } from '../../core/blobs.ts';
import type { Db } from '../../core/db.ts';
import { AppError, notFound, validationFailed } from '../../core/errors.ts';
import { sql } from '../../core/orm.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import { composeMessage, parseAddress } from '../delivery/compose.ts';
import type { EventsService } from '../events/service.ts';
import { imapOptions, smtpOptions } from './clients.ts';
import { type AccountsService, serverSettings } from './service.ts';
import { SYNC_CHANNEL } from './sync/context.ts';
import { removeOrphans, updatedEvent } from './sync/folder.ts';
import * as syncStore from './sync/store.ts';
import type { MailAccountRow } from './tables.ts';

export interface MessageChanges {
  seen?: boolean;
  flagged?: boolean;
  answered?: boolean;
  /** Moves the message (every copy but those in Gmail's All Mail) to this folder. */
  folder?: string;
}

export interface AccountSendInput {
  to: string[];
  cc: string[];
  bcc: string[];
  subject?: string | null;
  text?: string | null;
  html?: string | null;
  /** A synced message (Mailroom's id) this answers: In-Reply-To, References and the subject follow it. */
  replyTo?: string | null;
  /** More header fields (warmup's token and threading); those the message sets itself win. */
  headers?: Record<string, string>;
}

export interface AccountMailOptions {
  db: Db;
  blobs: BlobStore;
  events: EventsService;
  accounts: AccountsService;
}

const FLAGS = { seen: '\\Seen', flagged: '\\Flagged', answered: '\\Answered' } as const;
/** Gmail and Microsoft 365 keep a copy of what their SMTP sends; other servers need one appended. */
const SAVES_SENT_ITSELF = new Set(['google', 'microsoft']);

const remoteFailed = (err: unknown) =>
  new AppError(502, 'remote_failed', `The account's server refused the change: ${(err as Error).message}`);

export class AccountMail {
  readonly #o: AccountMailOptions;
  /** One change at a time per account in this process (each holds a connection to the server). */
  readonly #busy = new Map<string, Promise<unknown>>();

  constructor(options: AccountMailOptions) {
    this.#o = options;
  }

  async folders(organizationId: string, accountId: string) {
    const account = await this.#o.accounts.get(organizationId, accountId);
    return syncStore.folderCounts(this.#o.db, account.id);
  }

  async list(organizationId: string, accountId: string, folder: string | undefined, page: PageRequest) {
    const account = await this.#o.accounts.get(organizationId, accountId);
    const { rows, total } = await syncStore.listMessages(this.#o.db, account.id, folder ?? null, page);
    return toPage(rows, total, page);
  }

  async get(organizationId: string, accountId: string, messageId: string) {
    const account = await this.#o.accounts.get(organizationId, accountId);
    const found = await syncStore.syncedMessage(this.#o.db, account.id, messageId);
    if (!found) throw notFound('Message');
    return found;
  }

  /** Asks the worker holding the account to sync every folder now (at commit, on any process). */
  async requestSync(organizationId: string, accountId: string): Promise<MailAccountRow> {
    const account = await this.#live(organizationId, accountId);
    await this.#o.db.execute(sql`select pg_notify(${SYNC_CHANNEL}, ${account.id})`);
    return account;
  }

  /** Flags and moves, on the server first; the copies here follow what the server did. */
  async update(organizationId: string, accountId: string, messageId: string, changes: MessageChanges) {
    const account = await this.#live(organizationId, accountId);
    const copies = await this.#copies(account, messageId);
    const folders = new Map((await syncStore.foldersOf(this.#o.db, account.id)).map((f) => [f.path, f]));
    const target = changes.folder === undefined ? null : folders.get(changes.folder);
    if (changes.folder !== undefined && !target)
      throw validationFailed('folder', `the account has no folder ${changes.folder}`);
    await this.#remote(account, async (client) => {
      for (const copy of copies) {
        const lock = await client.getMailboxLock(copy.path);
        try {
          const flags = await this.#applyFlags(client, copy, changes);
          let where = { folderId: copy.folderId, path: copy.path, uid: copy.uid };
          if (target && target.path !== copy.path && copy.specialUse !== '\\All') {
            const moved = await client.messageMove(String(copy.uid), target.path, { uid: true });
            const uid = moved ? moved.uidMap?.get(copy.uid) : undefined;
            await this.#o.db.transaction(async (tx) => {
              if (uid) await syncStore.moveCopy(tx, copy, { folderId: target.id, uid });
              // Without UIDPLUS the new UID is unknown: the copy goes, and the target's next sync brings it.
              else await syncStore.deleteCopies(tx, copy.folderId, [copy.uid]);
            });
            where = { folderId: target.id, path: target.path, uid: uid || copy.uid };
          }
          await this.#o.db.transaction(async (tx) => {
            if (flags)
              await syncStore.updateCopies(tx, where.folderId, [
                { uid: where.uid, flags, labels: copy.labels, modseq: null },
              ]);
            await this.#o.events.emitMany(tx, [
              updatedEvent(account, where.path, messageId, where.uid, flags ?? copy.flags, false),
            ]);
          });
        } finally {
          lock.release();
        }
      }
    });
    return this.get(organizationId, accountId, messageId);
  }

  /**
   * Deletes on the server: moved to the account's Trash, or expunged when it is there already, when the
   * account has no Trash, or when `permanent`. Here the message goes with its last copy.
   */
  async delete(organizationId: string, accountId: string, messageId: string, permanent: boolean) {
    const account = await this.#live(organizationId, accountId);
    const copies = await this.#copies(account, messageId);
    const trash = (await syncStore.foldersOf(this.#o.db, account.id)).find((f) => f.specialUse === '\\Trash');
    await this.#remote(account, async (client) => {
      for (const copy of copies) {
        const lock = await client.getMailboxLock(copy.path);
        try {
          const expunge = permanent || !trash || copy.folderId === trash.id;
          if (expunge) await client.messageDelete(String(copy.uid), { uid: true });
          else await client.messageMove(String(copy.uid), trash.path, { uid: true });
          await this.#o.db.transaction(async (tx) => {
            const held = await syncStore.deleteCopies(tx, copy.folderId, [copy.uid]);
            await removeOrphans(this.#o.blobs, account, tx, held);
            await this.#o.events.emitMany(tx, [
              updatedEvent(account, copy.path, messageId, copy.uid, copy.flags, true),
            ]);
          });
        } finally {
          lock.release();
        }
      }
    });
    // A copy moved to Trash arrives there with the Trash folder's next sync, as a message of its own.
  }

  /** Sends through the account's SMTP server; servers that keep no copy get one appended to Sent. */
  async send(organizationId: string, accountId: string, input: AccountSendInput) {
    const account = await this.#live(organizationId, accountId);
    if (!account.smtp)
      throw new AppError(409, 'no_smtp', 'The account has no SMTP server: connect one to send through it');
    const recipients = [...input.to, ...input.cc, ...input.bcc];
    if (!recipients.length) throw validationFailed('to', 'a message needs at least one recipient');
    for (const address of recipients)
      if (!parseAddress(address)) throw validationFailed('to', `not an address: ${address}`);
    if (input.text == null && input.html == null)
      throw validationFailed('text', 'a message needs text or html');
    await this.#o.accounts.checkServers(account);
    const thread = input.replyTo ? await this.#threading(account, input.replyTo) : null;
    const domain = account.address.slice(account.address.lastIndexOf('@') + 1);
    const messageIdHeader = `<${randomBytes(16).toString('hex')}@${domain}>`;
    const raw = await composeMessage({
      from: { address: account.address, name: account.name || null },
      to: input.to,
      cc: input.cc,
      replyTo: [],
      subject: input.subject ?? thread?.subject ?? '',
      text: input.text,
      html: input.html,
      attachments: [],
      headers: {
        ...input.headers,
        ...(thread ? { 'In-Reply-To': thread.inReplyTo, References: thread.references } : {}),
      },
      messageId: messageIdHeader,
      date: new Date(),
    });
    const credentials = await this.#o.accounts.credentials(account);
    const transport = nodemailer.createTransport(smtpOptions(serverSettings(account.smtp), credentials));
    let info: { accepted: (string | { address: string })[]; rejected: (string | { address: string })[] };
    try {
      info = await transport.sendMail({ envelope: { from: account.address, to: recipients }, raw });
    } catch (err) {
      throw new AppError(
        502,
        'send_failed',
        `The account's SMTP server refused the message: ${(err as Error).message}`,
      );
    } finally {
      transport.close();
    }
    const sentFolder = SAVES_SENT_ITSELF.has(account.provider) ? null : await this.#appendSent(account, raw);
    const address = (a: string | { address: string }) => (typeof a === 'string' ? a : a.address);
    return {
      message_id_header: messageIdHeader,
      accepted: info.accepted.map(address),
      rejected: info.rejected.map(address),
      sent_folder: sentFolder,
    };
  }

  /**
   * Runs `work` on an IMAP connection of its own to a live account (warmup reads and files its messages
   * this way), after this process's other changes to the account; refusals come back as 502.
   */
  async withServer<T>(organizationId: string, accountId: string, work: (client: ImapFlow) => Promise<T>) {
    return this.#remote(await this.#live(organizationId, accountId), work);
  }

  /** The replied-to message's threading headers and a subject that says it is a reply. */
  async #threading(account: MailAccountRow, messageId: string) {
    const original = await syncStore.syncedMessage(this.#o.db, account.id, messageId);
    if (!original) throw validationFailed('reply_to', 'no such message in this account');
    const header = original.message_id_header;
    if (!header) throw validationFailed('reply_to', 'the message has no Message-ID to answer');
    const subject = original.subject ?? '';
    // RFC 5322 3.6.4: the parent's References (or, lacking them, its In-Reply-To) and then the parent.
    const ancestors = original.references.length
      ? original.references
      : original.in_reply_to
        ? [original.in_reply_to]
        : [];
    const bracketed = (id: string) => `<${id}>`;
    return {
      inReplyTo: bracketed(header),
      references: [...ancestors, header].map(bracketed).join(' '),
      subject: /^re:/i.test(subject) ? subject : `Re: ${subject}`,
    };
  }

  async #appendSent(account: MailAccountRow, raw: Buffer): Promise<string | null> {
    const sent = (await syncStore.foldersOf(this.#o.db, account.id)).find((f) => f.specialUse === '\\Sent');
    const path = sent?.path ?? 'Sent';
    try {
      await this.#remote(account, (client) => client.append(path, raw, ['\\Seen']));
      return path;
    } catch {
      // The message went; only its copy is missing, which the response says (sent_folder: null).
      return null;
    }
  }

  async #live(organizationId: string, accountId: string): Promise<MailAccountRow> {
    const account = await this.#o.accounts.get(organizationId, accountId);
    if (account.state === 'paused') throw new AppError(409, 'account_paused', 'The account is paused');
    if (account.state === 'auth_failed')
      throw new AppError(
        409,
        'account_auth_failed',
        'The account’s login was refused: give it a new password or sign in again',
      );
    return account;
  }

  async #copies(account: MailAccountRow, messageId: string) {
    const copies = await syncStore.copiesOfMessage(this.#o.db, account.id, messageId);
    if (!copies.length) throw notFound('Message');
    return copies;
  }

  /** The new flags of a copy after the changes (null: no flag change asked), applied on the server. */
  async #applyFlags(
    client: ImapFlow,
    copy: syncStore.SyncedCopy,
    changes: MessageChanges,
  ): Promise<string[] | null> {
    const flags = new Set(copy.flags);
    const add: string[] = [];
    const remove: string[] = [];
    for (const key of Object.keys(FLAGS) as (keyof typeof FLAGS)[]) {
      const want = changes[key];
      if (want === undefined || want === flags.has(FLAGS[key])) continue;
      (want ? add : remove).push(FLAGS[key]);
      if (want) flags.add(FLAGS[key]);
      else flags.delete(FLAGS[key]);
    }
    if (!add.length && !remove.length) return null;
    if (add.length) await client.messageFlagsAdd(String(copy.uid), add, { uid: true });
    if (remove.length) await client.messageFlagsRemove(String(copy.uid), remove, { uid: true });
    return [...flags].sort();
  }

  /** Runs `work` on a connection of its own, after this process's other changes to the account. */
  async #remote<T>(account: MailAccountRow, work: (client: ImapFlow) => Promise<T>): Promise<T> {
    const before = this.#busy.get(account.id) ?? Promise.resolve();
    const run = before
      .catch(() => {})
      .then(async () => {
        await this.#o.accounts.checkServers(account);
        const credentials = await this.#o.accounts.credentials(account);
        const client = new ImapFlow(imapOptions(serverSettings(account.imap), credentials));
        client.on('error', () => {});
        try {
          await client.connect();
        } catch (err) {
          client.close();
          throw remoteFailed(err);
        }
        try {
          return await work(client);
        } catch (err) {
          throw err instanceof AppError ? err : remoteFailed(err);
        } finally {
          await client.logout().catch(() => client.close());
        }
      });
    this.#busy.set(account.id, run);
    try {
      return await run;
    } finally {
      if (this.#busy.get(account.id) === run) this.#busy.delete(account.id);
    }
  }
}
