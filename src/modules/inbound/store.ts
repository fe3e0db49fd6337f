// The inbound pipeline's queries. The directory reads the routing tables (domains, mailboxes, aliases,
// rules) in one statement per recipient, because the MX asks it at RCPT time for every address.
import type { Db } from '../../core/db.ts';
import { and, asc, desc, eq, inArray, isNull, or, sql } from '../../core/orm.ts';
import { aliases } from '../aliases/tables.ts';
import { dkimKeys, domains } from '../domains/tables.ts';
import { mailboxes } from '../mailboxes/tables.ts';
import {
  type MessageAuth,
  type MessageDetails,
  type MessageRow,
  type MessageStatus,
  messageRoutes,
  messages,
} from '../messages/tables.ts';
import { rules } from '../rules/tables.ts';

/** What a hosted address resolves to, as far as the RCPT check needs to know. */
export interface DirectoryEntry {
  organizationId: string;
  domainId: string;
  domain: string;
  catchAllTarget: string | null;
  dmarcRejectAction: 'reject' | 'quarantine' | null;
  mailbox: { id: string; isActive: boolean; quotaBytes: number; usedBytes: number } | null;
  aliasId: string | null;
  hasRule: boolean;
}

/** The hosted domain (active, its ownership proven) and what `localPart` resolves to there. */
export async function directoryEntry(
  db: Db,
  domain: string,
  localPart: string,
): Promise<DirectoryEntry | null> {
  const result = (await db.execute(sql`
    select d.id as domain_id, d.organization_id, d.name, d.catch_all_target,
           d.settings->>'inbound_dmarc_reject' as dmarc_reject_action,
           m.id as mailbox_id, m.is_active as mailbox_active, m.quota_bytes, m.used_bytes,
           (select a.id from aliases a
             where a.domain_id = d.id and a.local_part = ${localPart} and a.is_enabled
               and (a.expires_at is null or a.expires_at > now())) as alias_id,
           exists (select 1 from rules r
             where r.domain_id = d.id and r.is_enabled
               and (r.recipient is null or r.recipient = ${localPart})) as has_rule
      from domains d
      left join mailboxes m on m.domain_id = d.id and m.local_part = ${localPart}
     where d.name = ${domain} and d.ownership_verified and d.is_active`)) as unknown as {
    rows: Record<string, any>[];
  };
  const row = result.rows[0];
  if (!row) return null;
  return {
    organizationId: row.organization_id,
    domainId: row.domain_id,
    domain: row.name,
    catchAllTarget: row.catch_all_target,
    dmarcRejectAction: row.dmarc_reject_action,
    mailbox: row.mailbox_id
      ? {
          id: row.mailbox_id,
          isActive: row.mailbox_active,
          quotaBytes: Number(row.quota_bytes),
          usedBytes: Number(row.used_bytes),
        }
      : null,
    aliasId: row.alias_id,
    hasRule: row.has_rule,
  };
}

export type NewMessage = typeof messages.$inferInsert;

export async function insertMessages(tx: Db, rows: NewMessage[]): Promise<void> {
  if (rows.length) await tx.insert(messages).values(rows);
}

/** A message as the MX accepted it: the envelope and the authentication verdicts. */
export interface AcceptedMessage {
  id: string;
  organizationId: string;
  domainId: string;
  blobId: string;
  size: number;
  mailFrom: string;
  rcptTo: string[];
  remoteIp: string;
  helo: string;
  tls: boolean;
  auth: MessageAuth;
}

/**
 * Inserts accepted messages in one statement whose single parameter is the rows as JSON: the MX's
 * hot path, where building a many-row insert column by column costs more than the insert.
 */
export async function insertAccepted(tx: Db, rows: AcceptedMessage[]): Promise<void> {
  const json = JSON.stringify(
    rows.map((r) => ({
      id: r.id,
      organization_id: r.organizationId,
      domain_id: r.domainId,
      blob_id: r.blobId,
      size: r.size,
      mail_from: r.mailFrom,
      rcpt_to: r.rcptTo,
      remote_ip: r.remoteIp,
      helo: r.helo,
      tls: r.tls,
      auth: r.auth,
    })),
  );
  await tx.execute(sql`
    insert into messages (id, organization_id, domain_id, direction, status, blob_id, size, mail_from, rcpt_to,
                          remote_ip, helo, tls, auth)
    select id, organization_id, domain_id, 'inbound', 'pending', blob_id, size, mail_from, rcpt_to,
           remote_ip, helo, tls, auth
      from jsonb_to_recordset(${json}::jsonb) as r(id uuid, organization_id uuid, domain_id uuid, blob_id uuid,
           size integer, mail_from text, rcpt_to text[], remote_ip text, helo text, tls boolean, auth jsonb)`);
}

/** Marks the message as being processed, unless processing already finished. */
export async function claimForProcessing(db: Db, id: string): Promise<MessageRow | null> {
  const [row] = await db
    .update(messages)
    .set({ status: 'processing', updatedAt: new Date() })
    .where(and(eq(messages.id, id), isNull(messages.processedAt)))
    .returning();
  return row ?? null;
}

export interface ProcessedFields {
  status: MessageStatus;
  error: string | null;
  messageIdHeader: string | null;
  inReplyTo: string | null;
  references: string[];
  threadId: string;
  fromAddress: string | null;
  fromName: string | null;
  toAddresses: string[];
  ccAddresses: string[];
  subject: string | null;
  sentAt: Date | null;
  hasAttachments: boolean;
  bodyText: string;
  details: MessageDetails;
  searchText: string;
}

/**
 * Records the outcome of processing. Returns false when another run finished first: the caller's
 * transaction must then roll back, so nothing is delivered twice.
 */
export async function finishProcessing(tx: Db, id: string, f: ProcessedFields): Promise<boolean> {
  // Written as SQL: the search vector is not a column the ORM knows (it is never read back). Arrays go as
  // JSON: the ORM would spread a JS array into a parameter list.
  const textArray = (values: string[]) =>
    sql`array(select jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`;
  const result = (await tx.execute(sql`
    update messages
       set status = ${f.status}, error = ${f.error}, message_id_header = ${f.messageIdHeader},
           in_reply_to = ${f.inReplyTo}, "references" = ${textArray(f.references)}, thread_id = ${f.threadId},
           from_address = ${f.fromAddress}, from_name = ${f.fromName}, to_addresses = ${textArray(f.toAddresses)},
           cc_addresses = ${textArray(f.ccAddresses)}, subject = ${f.subject}, sent_at = ${f.sentAt},
           has_attachments = ${f.hasAttachments}, body_text = ${f.bodyText},
           details = ${JSON.stringify(f.details)}::jsonb, search = to_tsvector('simple', ${f.searchText}),
           processed_at = now(), updated_at = now()
     where id = ${id} and processed_at is null
    returning id`)) as unknown as { rows: unknown[] };
  return result.rows.length === 1;
}

/** The thread of the first known message this one replies to or is referenced by, if any. */
export async function threadOf(
  db: Db,
  organizationId: string,
  messageIdHeader: string | null,
  parents: string[],
): Promise<string | null> {
  if (parents.length) {
    const [row] = await db
      .select({ threadId: messages.threadId })
      .from(messages)
      .where(
        and(
          eq(messages.organizationId, organizationId),
          inArray(messages.messageIdHeader, parents),
          sql`${messages.threadId} is not null`,
        ),
      )
      .limit(1);
    if (row?.threadId) return row.threadId;
  }
  if (messageIdHeader) {
    // A reply that arrived before the message it answers already started the thread.
    const [row] = await db
      .select({ threadId: messages.threadId })
      .from(messages)
      .where(
        and(
          eq(messages.organizationId, organizationId),
          or(
            eq(messages.inReplyTo, messageIdHeader),
            sql`${messages.references} @> array[${messageIdHeader}]::text[]`,
          ),
          sql`${messages.threadId} is not null`,
        ),
      )
      .limit(1);
    if (row?.threadId) return row.threadId;
  }
  return null;
}

export async function rulesFor(db: Db, domainIds: string[]) {
  if (!domainIds.length) return [];
  return db
    .select()
    .from(rules)
    .where(and(inArray(rules.domainId, domainIds), eq(rules.isEnabled, true)))
    .orderBy(asc(rules.priority), asc(rules.createdAt));
}

export async function countRuleMatches(tx: Db, ruleIds: string[]): Promise<void> {
  if (!ruleIds.length) return;
  await tx
    .update(rules)
    .set({ matchCount: sql`${rules.matchCount} + 1`, lastMatchedAt: new Date() })
    .where(inArray(rules.id, ruleIds));
}

export interface LocalTarget {
  domainId: string;
  catchAllTarget: string | null;
  mailboxId: string | null;
  mailboxActive: boolean | null;
  alias: { id: string; targets: string[] } | null;
}

/** A hosted address of the same organisation, for expanding alias and rule targets. */
export async function localTarget(
  db: Db,
  organizationId: string,
  domain: string,
  localPart: string,
): Promise<LocalTarget | null> {
  const [row] = await db
    .select({
      domainId: domains.id,
      catchAllTarget: domains.catchAllTarget,
      mailboxId: mailboxes.id,
      mailboxActive: mailboxes.isActive,
      aliasId: aliases.id,
      aliasTargets: aliases.targets,
    })
    .from(domains)
    .leftJoin(mailboxes, and(eq(mailboxes.domainId, domains.id), eq(mailboxes.localPart, localPart)))
    .leftJoin(
      aliases,
      and(
        eq(aliases.domainId, domains.id),
        eq(aliases.localPart, localPart),
        eq(aliases.isEnabled, true),
        or(isNull(aliases.expiresAt), sql`${aliases.expiresAt} > now()`),
      ),
    )
    .where(
      and(
        eq(domains.organizationId, organizationId),
        eq(domains.name, domain),
        eq(domains.ownershipVerified, true),
        eq(domains.isActive, true),
      ),
    );
  if (!row) return null;
  const { aliasId, aliasTargets, ...rest } = row;
  return { ...rest, alias: aliasId && aliasTargets ? { id: aliasId, targets: aliasTargets } : null };
}

/** The key ARC seals are made with: the domain's active DKIM key. */
export async function activeKeyOf(db: Db, domainId: string) {
  const [row] = await db
    .select()
    .from(dkimKeys)
    .where(and(eq(dkimKeys.domainId, domainId), eq(dkimKeys.state, 'active')))
    // RSA first: ARC verifiers widely support it; Ed25519 support is rare.
    .orderBy(desc(dkimKeys.algorithm))
    .limit(1);
  return row ?? null;
}

export type NewRoute = typeof messageRoutes.$inferInsert;

export async function insertRoutes(tx: Db, rows: NewRoute[]): Promise<void> {
  if (rows.length) await tx.insert(messageRoutes).values(rows);
}

/**
 * Files the message in a mailbox folder with the folder's next UID and counts its size against the
 * mailbox, in one statement: the folder's row lock is held from here to the commit, so no round trip
 * sits inside it. A message already in the mailbox (two recipients resolving to one mailbox) is filed
 * once.
 */
export async function fileInMailbox(
  tx: Db,
  input: {
    organizationId: string;
    mailboxId: string;
    folder: string;
    messageId: string;
    size: number;
    id: string;
  },
): Promise<void> {
  await tx.execute(sql`
    with folder as (
      update mailbox_folders set uid_next = uid_next + 1
       where mailbox_id = ${input.mailboxId} and name = ${input.folder}
      returning id, uid_next - 1 as uid
    ), filed as (
      insert into mailbox_messages (id, organization_id, mailbox_id, folder_id, message_id, uid, size)
      select ${input.id}, ${input.organizationId}, ${input.mailboxId}, folder.id, ${input.messageId}, folder.uid,
             ${input.size}
        from folder
      on conflict (mailbox_id, message_id) do nothing
      returning id
    )
    update mailboxes set used_bytes = used_bytes + ${input.size}
     where id = ${input.mailboxId} and exists (select 1 from filed)`);
}

/** Messages accepted but not processed, older than `olderThan` (their job was lost in a crash). */
export async function unprocessedIds(db: Db, olderThan: Date, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: messages.id })
    .from(messages)
    .where(
      and(
        inArray(messages.status, ['pending', 'processing']),
        eq(messages.direction, 'inbound'),
        isNull(messages.processedAt),
        sql`${messages.receivedAt} < ${olderThan}`,
      ),
    )
    .orderBy(asc(messages.receivedAt))
    .limit(limit);
  return rows.map((r) => r.id);
}
