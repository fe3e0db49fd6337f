// The warmup engine, run by the `warmup.tick` job every minute (one tick at a time across all workers).
// A tick is a list of steps, each bounded so a tick ends in time:
//   plan      enrolments whose local day began get the day's send times (ramp quota, random times)
//   open      send times that came become messages: a partner from the pool, a template, a token
//   send      messages due by now go out through the normal pipelines (hosted: the send API with DKIM,
//             queue and limits; external accounts: their own SMTP server)
//   receive   the receiving side finds each sent message by its token: hosted mailboxes through the
//             store, external accounts over IMAP; from spam it is moved to the inbox (a rescue); it is
//             marked read, sometimes starred, answered at the recipient's reply rate
//   archive   found messages leave the inbox for the archive a few hours later
//   missing   messages never found within MAILROOM_WARMUP_MISSING_AFTER are recorded as missing
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { newId } from '../../core/ids.ts';
import type { AccountMail } from '../accounts/mail.ts';
import type { OutboundService } from '../delivery/service.ts';
import { type EventInput, type EventsService, eventOf } from '../events/service.ts';
import type { MailStore } from '../imap/service.ts';
import { addDays, localTime } from '../../core/zoned-time.ts';
import { OPENINGS, person, pick, REPLIES, render, type Template, WEEKDAY_NAMES } from './content.ts';
import { warmupRescued } from './events.ts';
import { newToken, openings, planDay, type PlannedMessage } from './planner.ts';
import * as store from './store.ts';
import type { PlannedDay } from './store.ts';
import type { EnrollmentRow, Placement, WarmupMessageRow } from './tables.ts';

export interface WarmupSettings {
  /** Whether organisations may put mailboxes in the installation's shared pool. */
  sharedPool: boolean;
  /** A sent message not found by then is missing. */
  missingAfterMs: number;
  /** How long a tick may keep taking new work. */
  tickBudgetMs: number;
}

export interface WarmupEngineOptions {
  db: Db;
  clock: Clock;
  log: Logger;
  events: EventsService;
  outbound: OutboundService;
  accountMail: AccountMail;
  mailstore: MailStore;
  settings: WarmupSettings;
  random?: () => number;
}

export interface TickReport {
  /** Openings planned for the days that began. */
  planned: number;
  /** Openings whose time came, made into messages. */
  opened: number;
  sent: number;
  failed: number;
  found: number;
  rescued: number;
  archived: number;
  missing: number;
}

const PLAN_BATCH = 2_000;
const OPEN_BATCH = 500;
const SEND_BATCH = 100;
const SEND_CONCURRENCY = 8;
const RECEIVE_BATCH = 1_000;
const STARRED_SHARE = 0.2;
/** Replies go out 10 minutes to 2 hours after the message was read; archiving 2 to 8 hours after. */
const REPLY_DELAY_MS = [10 * 60_000, 120 * 60_000];
const ARCHIVE_DELAY_MS = [2 * 3_600_000, 8 * 3_600_000];
/** A conversation is an opening, a reply, and at most a reply to the reply. */
const MAX_DEPTH = 2;
const HEADER = 'X-Entity-Ref-ID';
const JUNK_NAMES = /^(junk|spam|junk e-mail|junk email|bulk mail|\[gmail\]\/spam)$/i;
const CATEGORY = /^(?:\\\\)?(?:category[ _/:-]?)?(promotions|social|updates|forums)$/i;

const bare = (id: string) => id.trim().replace(/^<|>$/g, '');
const reSubject = (subject: string) => (/^re:/i.test(subject) ? subject : `Re: ${subject}`);

export class WarmupEngine {
  readonly #o: WarmupEngineOptions;
  readonly #random: () => number;
  #ticking: Promise<unknown> = Promise.resolve();

  constructor(options: WarmupEngineOptions) {
    this.#o = options;
    this.#random = options.random ?? Math.random;
  }

  /** One tick at a time in this process (the job's policy keeps it to one across processes). */
  tick(): Promise<TickReport> {
    const run = this.#ticking.catch(() => {}).then(() => this.#tick());
    this.#ticking = run;
    return run;
  }

  async #tick(): Promise<TickReport> {
    const started = Date.now();
    const inBudget = () => Date.now() - started < this.#o.settings.tickBudgetMs;
    const report: TickReport = {
      planned: 0,
      opened: 0,
      sent: 0,
      failed: 0,
      found: 0,
      rescued: 0,
      archived: 0,
      missing: 0,
    };
    report.planned = await this.#plan(inBudget);
    report.opened = await this.#open(inBudget);
    Object.assign(report, await this.#send(inBudget));
    const received = await this.#receive(inBudget);
    report.found = received.found;
    report.rescued = received.rescued;
    report.archived = await this.#archive(inBudget);
    const now = this.#o.clock.now();
    report.missing = await store.markMissing(
      this.#o.db,
      new Date(now.getTime() - this.#o.settings.missingAfterMs),
    );
    return report;
  }

  // ---- plan ---------------------------------------------------------------------------------------------

  /** Plans the day of every enrolment whose local day began; the number of openings planned. */
  async #plan(inBudget: () => boolean): Promise<number> {
    const { db } = this.#o;
    const now = this.#o.clock.now();
    const pools = new PoolCache(this.#o.settings.sharedPool);
    let planned = 0;
    while (inBudget()) {
      const claimed = await store.claimDueForPlanning(db, now, 120_000, PLAN_BATCH);
      if (!claimed.length) break;
      const days: PlannedDay[] = [];
      const opened = await store.openedSince(
        db,
        claimed.map((e) => e.id),
        addDays(now.toISOString().slice(0, 10), -1),
      );
      for (const enrollment of claimed) {
        const members = await pools.of(db, enrollment);
        const hasPartners = members.some((m) => m.id !== enrollment.id && m.address !== enrollment.address);
        const today = localTime(now, enrollment.timeZone).date;
        const already = opened.get(`${enrollment.id} ${today}`) ?? 0;
        days.push(planDay(enrollment, hasPartners, now, this.#random, already));
      }
      await store.recordPlannedDays(db, days);
      planned += days.reduce((n, d) => n + d.planTimes.length, 0);
    }
    return planned;
  }

  /** Makes the openings whose send times came into messages (partner, template, token). */
  async #open(inBudget: () => boolean): Promise<number> {
    const { db } = this.#o;
    const now = this.#o.clock.now();
    const pools = new PoolCache(this.#o.settings.sharedPool);
    const templates = new Map<string, string[]>();
    let opened = 0;
    while (inBudget()) {
      const made = await db.transaction(async (tx) => {
        const due = await store.takeDueOpenings(tx, now, OPEN_BATCH);
        const messages: PlannedMessage[] = [];
        for (const enrollment of due) {
          let keys = templates.get(enrollment.organizationId);
          if (!keys) {
            keys = await this.#templateKeys(tx, enrollment.organizationId, 'opening');
            templates.set(enrollment.organizationId, keys);
          }
          // Read in the transaction: the embedded database has one connection, which it holds.
          const members = await pools.of(tx, enrollment);
          messages.push(...openings(enrollment, enrollment.times, members, keys, this.#random));
        }
        await store.insertMessages(tx, messages as unknown as Record<string, unknown>[]);
        return due.length ? messages.length || -1 : 0;
      });
      if (!made) break;
      if (made > 0) opened += made;
    }
    return opened;
  }

  async #templateKeys(db: Db, organizationId: string, kind: 'opening' | 'reply'): Promise<string[]> {
    const builtin = (kind === 'opening' ? OPENINGS : REPLIES).map((t) => t.key);
    const own = (await store.templatesOf(db, organizationId)).filter((t) => t.kind === kind);
    // An organisation's own templates replace the built-in ones of their kind.
    return own.length ? own.map((t) => t.id) : builtin;
  }

  // ---- send ---------------------------------------------------------------------------------------------

  async #send(inBudget: () => boolean = () => true): Promise<{ sent: number; failed: number }> {
    const { db } = this.#o;
    const now = this.#o.clock.now();
    // A process that stopped mid-send left its messages in `sending`: an hour on they are released.
    await store.releaseStaleSending(db, 3_600_000);
    let sent = 0;
    let failed = 0;
    while (inBudget()) {
      const batch = await store.claimDueMessages(db, now, SEND_BATCH);
      if (!batch.length) break;
      const enrollments = new Map(
        (
          await store.enrollmentsByIds(db, [
            ...new Set(batch.flatMap((m) => [m.enrollmentId, m.recipientEnrollmentId ?? m.enrollmentId])),
          ])
        ).map((e) => [e.id, e]),
      );
      const parents = new Map(
        (
          await store.messagesByIds(
            db,
            batch.flatMap((m) => (m.parentId ? [m.parentId] : [])),
          )
        ).map((p) => [p.id, p]),
      );
      const templates = new Map(
        (
          await store.templatesByIds(
            db,
            batch.flatMap((m) => (m.template.startsWith('builtin:') ? [] : [m.template])),
          )
        ).map((t) => [t.id, { key: t.id, subject: t.subject, body: t.body }]),
      );
      let next = 0;
      const worker = async () => {
        while (next < batch.length) {
          const message = batch[next++];
          const ok = await this.#sendOne(message, enrollments, parents, templates, now);
          if (ok) sent++;
          else failed++;
        }
      };
      await Promise.all(Array.from({ length: SEND_CONCURRENCY }, worker));
    }
    return { sent, failed };
  }

  async #sendOne(
    message: WarmupMessageRow,
    enrollments: Map<string, EnrollmentRow>,
    parents: Map<string, WarmupMessageRow>,
    templates: Map<string, Template>,
    now: Date,
  ): Promise<boolean> {
    const { db, log } = this.#o;
    const sender = enrollments.get(message.enrollmentId);
    const recipient = message.recipientEnrollmentId
      ? enrollments.get(message.recipientEnrollmentId)
      : undefined;
    const parent = message.parentId ? parents.get(message.parentId) : undefined;
    try {
      if (!sender || !recipient) throw new Error('the sender or the recipient left warmup');
      if (sender.status !== 'active')
        throw new Error(`the sender's warmup is paused (${sender.pausedReason})`);
      if (message.parentId && !parent?.messageIdHeader) throw new Error('the message it answers is gone');
      const template = this.#template(message.template, templates, parent ? 'reply' : 'opening');
      const variables = {
        sender: person(sender.address, sender.name),
        recipient: person(recipient.address, recipient.name),
        weekday: WEEKDAY_NAMES[localTime(now, sender.timeZone).weekday],
      };
      const subject = parent
        ? reSubject(parent.subject ?? '')
        : render(template.subject, variables, this.#random);
      const text = render(template.body, variables, this.#random);
      const references = parent
        ? [
            ...(parent.referencesHeader ? parent.referencesHeader.split(' ') : []),
            `<${parent.messageIdHeader}>`,
          ].join(' ')
        : null;
      const headers: Record<string, string> = { [HEADER]: message.token };
      if (parent && references) {
        headers['In-Reply-To'] = `<${parent.messageIdHeader}>`;
        headers.References = references;
      }
      const messageIdHeader = await this.#deliver(sender, recipient, message, { subject, text, headers });
      await store.markSent(db, message.id, {
        sentAt: now,
        messageIdHeader,
        subject,
        referencesHeader: references,
      });
      return true;
    } catch (err) {
      const reason = (err as Error).message;
      log.warn({ warmupMessage: message.id, reason }, 'warmup message not sent');
      await store.markFailed(db, message.id, reason.slice(0, 500));
      return false;
    }
  }

  /** Sends through the sender's own pipeline; the Message-ID (without brackets). */
  async #deliver(
    sender: EnrollmentRow,
    recipient: EnrollmentRow,
    message: WarmupMessageRow,
    content: { subject: string; text: string; headers: Record<string, string> },
  ): Promise<string> {
    if (sender.mailboxId) {
      const { result } = await this.#o.outbound.send(
        sender.organizationId,
        {
          from: { address: sender.address, name: sender.name || null },
          to: [recipient.address],
          subject: content.subject,
          text: content.text,
          headers: content.headers,
          tags: ['warmup'],
        },
        `warmup:${message.id}`,
      );
      const held = result.recipients.find((r) => r.status === 'held');
      if (held) throw new Error(`held: ${held.hold_reason}`);
      return bare(result.message_id);
    }
    const sent = await this.#o.accountMail.send(sender.organizationId, sender.accountId!, {
      to: [recipient.address],
      cc: [],
      bcc: [],
      subject: content.subject,
      text: content.text,
      headers: content.headers,
    });
    if (!sent.accepted.length) throw new Error(`the account's SMTP server refused ${recipient.address}`);
    return bare(sent.message_id_header);
  }

  #template(key: string, own: Map<string, Template>, kind: 'opening' | 'reply'): Template {
    const builtin = kind === 'opening' ? OPENINGS : REPLIES;
    return own.get(key) ?? builtin.find((t) => t.key === key) ?? pick(builtin, this.#random);
  }

  // ---- receive ------------------------------------------------------------------------------------------

  async #receive(inBudget: () => boolean): Promise<{ found: number; rescued: number }> {
    const hosted = await this.#receiveHosted();
    const external = await this.#receiveExternal(inBudget);
    return { found: hosted.found + external.found, rescued: hosted.rescued + external.rescued };
  }

  async #receiveHosted() {
    const { db, mailstore } = this.#o;
    const items = await store.awaiting(db, 'mailbox', RECEIVE_BATCH);
    const copies = await store.hostedCopies(db, items);
    const found: Arrival[] = [];
    const unseen: string[] = [];
    for (const item of items) {
      const mine = copies.filter((c) => c.warmupId === item.id);
      if (!mine.length) {
        unseen.push(item.id);
        continue;
      }
      const junk = mine.find((c) => c.specialUse === '\\Junk');
      let copy = mine.find((c) => c.folder === 'INBOX') ?? junk ?? mine[0];
      const starred = this.#random() < STARRED_SHARE;
      const mailboxId = item.mailboxId!;
      try {
        if (junk && copy === junk) {
          const from = await mailstore.folderById(item.recipientOrg, mailboxId, junk.folderId);
          const inbox = await mailstore.folder(item.recipientOrg, mailboxId, 'INBOX');
          if (!inbox) throw new Error('the mailbox has no INBOX');
          const [placed] = await mailstore.move(item.recipientOrg, from, inbox, [junk.uid]);
          copy = {
            ...junk,
            folderId: inbox.id,
            folder: 'INBOX',
            specialUse: inbox.specialUse,
            uid: placed.to,
          };
        }
        const folder = await mailstore.folderById(item.recipientOrg, mailboxId, copy.folderId);
        await mailstore.storeFlags(
          item.recipientOrg,
          folder,
          [copy.uid],
          'add',
          starred ? ['\\Seen', '\\Flagged'] : ['\\Seen'],
        );
      } catch (err) {
        this.#o.log.warn({ err, warmupMessage: item.id }, 'warmup message found but not filed');
        continue;
      }
      found.push({
        item,
        placement: junk ? 'spam' : 'inbox',
        category: null,
        rescued: Boolean(junk),
        starred,
      });
    }
    await store.markChecked(db, unseen, this.#o.clock.now());
    return this.#recordArrivals(found);
  }

  async #receiveExternal(inBudget: () => boolean) {
    const items = await store.awaiting(this.#o.db, 'account', RECEIVE_BATCH);
    const byAccount = new Map<string, store.Awaiting[]>();
    for (const item of items) {
      const list = byAccount.get(item.accountId!) ?? [];
      list.push(item);
      byAccount.set(item.accountId!, list);
    }
    const found: Arrival[] = [];
    const looked: string[] = [];
    for (const [accountId, pending] of byAccount) {
      // What is not looked at in this tick's time is looked at first in the next one.
      if (!inBudget()) break;
      looked.push(...pending.map((p) => p.id));
      try {
        found.push(
          ...(await this.#o.accountMail.withServer(pending[0].recipientOrg, accountId, (client) =>
            this.#findOnServer(client, pending),
          )),
        );
      } catch (err) {
        this.#o.log.warn({ err, accountId }, 'warmup could not look for its messages in an account');
      }
    }
    // Each pending message is looked for in turn: an account that fails, or mail that never comes, does
    // not keep the next ones waiting (and what is never found is missing after a day).
    const foundIds = new Set(found.map((f) => f.item.id));
    await store.markChecked(
      this.#o.db,
      looked.filter((id) => !foundIds.has(id)),
      this.#o.clock.now(),
    );
    return this.#recordArrivals(found);
  }

  /** Looks in the account's inbox and spam folder for the pending tokens, and files what it finds. */
  async #findOnServer(client: ImapFlow, pending: store.Awaiting[]): Promise<Arrival[]> {
    const folders = await client.list();
    const junk =
      folders.find((f) => f.specialUse === '\\Junk')?.path ??
      folders.find((f) => JUNK_NAMES.test(f.path))?.path;
    const byToken = new Map(pending.map((p) => [p.token, p]));
    const found: Arrival[] = [];
    for (const path of junk ? ['INBOX', junk] : ['INBOX']) {
      const lock = await client.getMailboxLock(path);
      try {
        const uids = (await client.search({ header: { [HEADER]: true } }, { uid: true })) || [];
        if (!uids.length) continue;
        const hits: { uid: number; item: store.Awaiting; labels: string[] }[] = [];
        for await (const msg of client.fetch(
          uids,
          { uid: true, headers: [HEADER], labels: true },
          { uid: true },
        )) {
          const token = /:\s*(\S+)/.exec(msg.headers?.toString() ?? '')?.[1];
          const item = token ? byToken.get(token) : undefined;
          if (item) hits.push({ uid: msg.uid, item, labels: [...(msg.labels ?? [])] });
        }
        for (const hit of hits) {
          byToken.delete(hit.item.token);
          const starred = this.#random() < STARRED_SHARE;
          await client.messageFlagsAdd(String(hit.uid), starred ? ['\\Seen', '\\Flagged'] : ['\\Seen'], {
            uid: true,
          });
          const spam = path === junk;
          if (spam) await client.messageMove(String(hit.uid), 'INBOX', { uid: true });
          const category = spam ? null : (hit.labels.map((l) => CATEGORY.exec(l)?.[1]).find(Boolean) ?? null);
          const placement: Placement = spam ? 'spam' : category ? 'category' : 'inbox';
          found.push({
            item: hit.item,
            placement,
            category: category?.toLowerCase() ?? null,
            rescued: spam,
            starred,
          });
        }
      } finally {
        lock.release();
      }
    }
    return found;
  }

  /** Records what was found, plans the replies, and announces rescues, in one transaction. */
  async #recordArrivals(arrivals: Arrival[]): Promise<{ found: number; rescued: number }> {
    if (!arrivals.length) return { found: 0, rescued: 0 };
    const { db } = this.#o;
    const now = this.#o.clock.now();
    const enrollments = new Map(
      (
        await store.enrollmentsByIds(db, [
          ...new Set(arrivals.flatMap((a) => [a.item.enrollmentId, a.item.recipientEnrollmentId])),
        ])
      ).map((e) => [e.id, e]),
    );
    const replies: PlannedMessage[] = [];
    const found: store.Found[] = [];
    const rescues: EventInput[] = [];
    const replyKeys = new Map<string, string[]>();
    for (const a of arrivals) {
      const replier = enrollments.get(a.item.recipientEnrollmentId);
      const original = enrollments.get(a.item.enrollmentId);
      const reply =
        replier?.status === 'active' &&
        original !== undefined &&
        a.item.depth < MAX_DEPTH &&
        this.#random() < replier.replyRate;
      if (reply && replier && original) {
        let keys = replyKeys.get(replier.organizationId);
        if (!keys) {
          keys = await this.#templateKeys(db, replier.organizationId, 'reply');
          replyKeys.set(replier.organizationId, keys);
        }
        const dueAt = new Date(now.getTime() + this.#between(REPLY_DELAY_MS));
        replies.push({
          id: newId(),
          organization_id: replier.organizationId,
          enrollment_id: replier.id,
          recipient_enrollment_id: original.id,
          token: newToken(),
          thread_id: a.item.threadId,
          parent_id: a.item.id,
          depth: a.item.depth + 1,
          template: pick(keys, this.#random),
          day: localTime(dueAt, replier.timeZone).date,
          due_at: dueAt,
          provider: original.provider,
        });
      }
      found.push({
        id: a.item.id,
        placement: a.placement,
        category: a.category,
        receivedAt: now,
        rescued: a.rescued,
        starred: a.starred,
        replyPlanned: Boolean(reply),
        archiveAt: new Date(now.getTime() + this.#between(ARCHIVE_DELAY_MS)),
      });
      if (a.rescued && replier && original)
        rescues.push(
          eventOf(warmupRescued, replier.organizationId, {
            mailbox_id: replier.mailboxId,
            account_id: replier.accountId,
            address: replier.address,
            warmup_message_id: a.item.id,
            from: original.address,
            provider: replier.provider,
          }),
        );
    }
    await db.transaction(async (tx) => {
      await store.recordFound(tx, found);
      await store.insertMessages(tx, replies as unknown as Record<string, unknown>[]);
      if (rescues.length) await this.#o.events.emitMany(tx, rescues);
    });
    return { found: found.length, rescued: rescues.length };
  }

  #between([low, high]: number[]): number {
    return low + Math.floor(this.#random() * (high - low));
  }

  // ---- archive ------------------------------------------------------------------------------------------

  /** Moves found messages whose time is up from the inbox to the archive; how many moved. */
  async #archive(inBudget: () => boolean): Promise<number> {
    const { db, mailstore } = this.#o;
    const now = this.#o.clock.now();
    const items = await store.dueForArchive(db, now, RECEIVE_BATCH);
    if (!items.length) return 0;
    const done: string[] = [];
    const nowhere: string[] = [];
    const copies = await store.hostedCopies(db, items);
    for (const item of items.filter((i) => i.mailboxId)) {
      const copy = copies.find((c) => c.warmupId === item.id && c.folder === 'INBOX');
      if (!copy) {
        // Read and moved by its owner already: nothing to archive.
        nowhere.push(item.id);
        continue;
      }
      try {
        const inbox = await mailstore.folderById(item.recipientOrg, item.mailboxId!, copy.folderId);
        const archive = await mailstore.folder(item.recipientOrg, item.mailboxId!, 'Archive');
        if (!archive) {
          nowhere.push(item.id);
          continue;
        }
        await mailstore.move(item.recipientOrg, inbox, archive, [copy.uid]);
        done.push(item.id);
      } catch (err) {
        this.#o.log.warn({ err, warmupMessage: item.id }, 'warmup message not archived');
      }
    }
    const byAccount = new Map<string, store.ArchiveItem[]>();
    for (const item of items.filter((i) => i.accountId)) {
      const list = byAccount.get(item.accountId!) ?? [];
      list.push(item);
      byAccount.set(item.accountId!, list);
    }
    for (const [accountId, list] of byAccount) {
      if (!inBudget()) break;
      try {
        const outcome = await this.#o.accountMail.withServer(list[0].recipientOrg, accountId, (client) =>
          this.#archiveOnServer(client, list),
        );
        done.push(...outcome.done);
        nowhere.push(...outcome.nowhere);
      } catch (err) {
        this.#o.log.warn({ err, accountId }, 'warmup could not archive in an account');
      }
    }
    await store.recordArchived(db, done, true, now);
    await store.recordArchived(db, nowhere, false, now);
    return done.length;
  }

  async #archiveOnServer(client: ImapFlow, items: store.ArchiveItem[]) {
    const folders = await client.list();
    const target =
      folders.find((f) => f.specialUse === '\\Archive')?.path ??
      folders.find((f) => f.specialUse === '\\All')?.path;
    if (!target) return { done: [], nowhere: items.map((i) => i.id) };
    const done: string[] = [];
    const lock = await client.getMailboxLock('INBOX');
    try {
      for (const item of items) {
        const uids = (await client.search({ header: { [HEADER]: item.token } }, { uid: true })) || [];
        if (uids.length) await client.messageMove(uids.join(','), target, { uid: true });
        done.push(item.id);
      }
    } finally {
      lock.release();
    }
    return { done, nowhere: [] as string[] };
  }
}

interface Arrival {
  item: store.Awaiting;
  placement: Placement;
  category: string | null;
  rescued: boolean;
  starred: boolean;
}

/** The active members of each pool, read once per step. */
class PoolCache {
  readonly #pools = new Map<string, Promise<store.PoolMember[]>>();
  /** Whether the installation's shared pool is on; off, shared members fall back to their organisation's. */
  readonly #sharedOn: boolean;

  constructor(sharedOn: boolean) {
    this.#sharedOn = sharedOn;
  }

  of(
    db: Db,
    enrollment: { pool: EnrollmentRow['pool']; organizationId: string },
  ): Promise<store.PoolMember[]> {
    const shared = this.#sharedOn && enrollment.pool === 'shared';
    const key = shared ? 'shared' : enrollment.organizationId;
    let members = this.#pools.get(key);
    if (!members) {
      members = store.poolMembers(
        db,
        shared
          ? { shared: true }
          : { organizationId: enrollment.organizationId, includeShared: !this.#sharedOn },
      );
      this.#pools.set(key, members);
    }
    return members;
  }
}
