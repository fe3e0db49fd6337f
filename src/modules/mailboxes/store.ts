import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, asc, count, eq, gt, inArray, like, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { aliases } from '../aliases/tables.ts';
import {
  type AppPasswordRow,
  type FolderRow,
  mailboxAppPasswords,
  type MailboxRow,
  type MailboxStatus,
  mailboxFolders,
  mailboxMessages,
  mailboxes,
} from './tables.ts';

export type NewMailbox = typeof mailboxes.$inferInsert;
export type NewFolder = typeof mailboxFolders.$inferInsert;
export type NewAppPassword = typeof mailboxAppPasswords.$inferInsert;

/** Namespace of the transaction-level advisory locks that serialise address claims within a domain. */
const ADDRESS_LOCK = 0x6d616c62; // 'malb'
/** Namespace of the locks that serialise counting an organisation's mailboxes against its limit. */
const LIMIT_LOCK = 0x6d616c6c; // 'mall'
/** Rows a multi-row insert carries (PostgreSQL takes 65,535 parameters a statement). */
const INSERT_CHUNK = 500;

export async function insertMailboxes(db: Db, rows: NewMailbox[]): Promise<MailboxRow[]> {
  const created: MailboxRow[] = [];
  for (let i = 0; i < rows.length; i += INSERT_CHUNK)
    created.push(
      ...(await db
        .insert(mailboxes)
        .values(rows.slice(i, i + INSERT_CHUNK))
        .returning()),
    );
  return created;
}

export async function insertFolders(db: Db, rows: NewFolder[]): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK)
    await db.insert(mailboxFolders).values(rows.slice(i, i + INSERT_CHUNK));
}

/** Under the organisation's limit lock (until the transaction ends): how many mailboxes it has. */
export async function lockAndCountMailboxes(db: Db, organizationId: string): Promise<number> {
  await db.execute(sql`select pg_advisory_xact_lock(${LIMIT_LOCK}::integer, hashtext(${organizationId}))`);
  return countMailboxes(db, organizationId);
}

export async function countMailboxes(db: Db, organizationId: string): Promise<number> {
  const [{ n }] = await db
    .select({ n: count() })
    .from(mailboxes)
    .where(eq(mailboxes.organizationId, organizationId));
  return Number(n);
}

/** Which of these addresses a mailbox or an alias holds: `domainId:localPart` → the holder. */
export async function takenAddresses(
  db: Db,
  organizationId: string,
  wanted: { domainId: string; localPart: string }[],
): Promise<Map<string, 'mailbox' | 'alias'>> {
  const taken = new Map<string, 'mailbox' | 'alias'>();
  const domainIds = [...new Set(wanted.map((w) => w.domainId))];
  const localParts = [...new Set(wanted.map((w) => w.localPart))];
  if (!localParts.length) return taken;
  for (const [holder, table] of [
    ['alias', aliases],
    ['mailbox', mailboxes],
  ] as const) {
    const rows = await db
      .select({ domainId: table.domainId, localPart: table.localPart })
      .from(table)
      .where(
        and(
          eq(table.organizationId, organizationId),
          inArray(table.domainId, domainIds),
          inArray(table.localPart, localParts),
        ),
      );
    for (const r of rows) taken.set(`${r.domainId}:${r.localPart}`, holder);
  }
  return taken;
}

/** The organisation's mailboxes and aliases at these addresses (lower case). */
export async function addressOwners(
  db: Db,
  organizationId: string,
  addresses: string[],
): Promise<{ address: string; mailbox_id: string | null; alias_id: string | null }[]> {
  const { rows } = (await db.execute(sql`
    select address, id as mailbox_id, null::uuid as alias_id from mailboxes
     where organization_id = ${organizationId} and address = any(${sql.param(addresses)}::text[])
    union all
    select address, null::uuid, id from aliases
     where organization_id = ${organizationId} and address = any(${sql.param(addresses)}::text[])`)) as unknown as {
    rows: {
      address: string;
      mailbox_id: string | null;
      alias_id: string | null;
    }[];
  };
  return rows;
}

/** Every local part of the domain that a mailbox or an alias holds. */
export async function localPartsOf(db: Db, organizationId: string, domainId: string): Promise<Set<string>> {
  const parts = new Set<string>();
  for (const table of [mailboxes, aliases]) {
    const rows = await db
      .select({ localPart: table.localPart })
      .from(table)
      .where(and(eq(table.organizationId, organizationId), eq(table.domainId, domainId)));
    for (const r of rows) parts.add(r.localPart);
  }
  return parts;
}

/** Up to `limit` mailboxes with addresses after `after`, in address order (keyset pages). */
export function mailboxesAfter(
  db: Db,
  organizationId: string,
  filter: { domainId?: string; status?: MailboxStatus },
  after: string | null,
  limit: number,
): Promise<MailboxRow[]> {
  const conditions: SQL[] = [eq(mailboxes.organizationId, organizationId)];
  if (filter.domainId) conditions.push(eq(mailboxes.domainId, filter.domainId));
  if (filter.status) conditions.push(eq(mailboxes.status, filter.status));
  if (after !== null) conditions.push(gt(mailboxes.address, after));
  return db
    .select()
    .from(mailboxes)
    .where(and(...conditions))
    .orderBy(asc(mailboxes.address))
    .limit(limit);
}

export async function senderPolicy(
  db: Db,
  organizationId: string,
  address: string,
): Promise<{ id: string; status: MailboxStatus; dailySendLimit: number | null } | null> {
  const [row] = await db
    .select({ id: mailboxes.id, status: mailboxes.status, dailySendLimit: mailboxes.dailySendLimit })
    .from(mailboxes)
    .where(and(eq(mailboxes.organizationId, organizationId), eq(mailboxes.address, address)));
  return row ?? null;
}

export interface MailboxFilter {
  domainId?: string;
  /** Addresses containing this text (lower case). */
  q?: string;
}

const likeContaining = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export async function listMailboxes(
  db: Db,
  organizationId: string,
  filter: MailboxFilter,
  page: PageRequest,
) {
  const conditions: SQL[] = [eq(mailboxes.organizationId, organizationId)];
  if (filter.domainId) conditions.push(eq(mailboxes.domainId, filter.domainId));
  if (filter.q) conditions.push(like(mailboxes.address, likeContaining(filter.q)));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(mailboxes)
      .where(where)
      .orderBy(asc(mailboxes.address), asc(mailboxes.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(mailboxes).where(where),
  ]);
  return { rows, total };
}

export async function mailboxById(db: Db, organizationId: string, id: string): Promise<MailboxRow | null> {
  const [row] = await db
    .select()
    .from(mailboxes)
    .where(and(eq(mailboxes.organizationId, organizationId), eq(mailboxes.id, id)));
  return row ?? null;
}

export interface FolderWithCount extends FolderRow {
  messages: number;
}

/** The mailbox's folders, each with how many messages it holds. */
export async function foldersOf(
  db: Db,
  organizationId: string,
  mailboxId: string,
): Promise<FolderWithCount[]> {
  const rows = await db
    .select({ folder: mailboxFolders, messages: count(mailboxMessages.id) })
    .from(mailboxFolders)
    .leftJoin(
      mailboxMessages,
      and(
        eq(mailboxMessages.folderId, mailboxFolders.id),
        eq(mailboxMessages.organizationId, organizationId),
      ),
    )
    .where(and(eq(mailboxFolders.organizationId, organizationId), eq(mailboxFolders.mailboxId, mailboxId)))
    .groupBy(mailboxFolders.id)
    .orderBy(asc(mailboxFolders.name));
  return rows.map((r) => ({ ...r.folder, messages: Number(r.messages) }));
}

export async function updateMailbox(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<NewMailbox>,
): Promise<MailboxRow | null> {
  const [row] = await db
    .update(mailboxes)
    .set({ ...changes, updatedAt: new Date() })
    .where(and(eq(mailboxes.organizationId, organizationId), eq(mailboxes.id, id)))
    .returning();
  return row ?? null;
}

/** One change to the organisation's mailboxes with these ids, or of this domain; the rows changed. */
export function updateMailboxes(
  db: Db,
  organizationId: string,
  target: { ids: string[] } | { domainId: string },
  changes: Partial<NewMailbox>,
): Promise<MailboxRow[]> {
  const which =
    'ids' in target
      ? target.ids.length
        ? inArray(mailboxes.id, target.ids)
        : sql`false`
      : eq(mailboxes.domainId, target.domainId);
  return db
    .update(mailboxes)
    .set({ ...changes, updatedAt: new Date() })
    .where(and(eq(mailboxes.organizationId, organizationId), which))
    .returning();
}

export async function deleteMailbox(db: Db, organizationId: string, id: string): Promise<MailboxRow | null> {
  const [row] = await db
    .delete(mailboxes)
    .where(and(eq(mailboxes.organizationId, organizationId), eq(mailboxes.id, id)))
    .returning();
  return row ?? null;
}

// ---- addresses: one local part per domain, across mailboxes and aliases -------------------------------

/** Serialises address claims in one domain until the transaction ends (mailbox and alias creation). */
export async function lockDomainAddresses(db: Db, domainId: string): Promise<void> {
  await db.execute(sql`select pg_advisory_xact_lock(${ADDRESS_LOCK}::integer, hashtext(${domainId}))`);
}

/** What already holds `localPart` in the domain: a mailbox, an alias, or nothing. */
export async function addressHolder(
  db: Db,
  organizationId: string,
  domainId: string,
  localPart: string,
): Promise<'mailbox' | 'alias' | null> {
  const [mailbox] = await db
    .select({ id: mailboxes.id })
    .from(mailboxes)
    .where(
      and(
        eq(mailboxes.organizationId, organizationId),
        eq(mailboxes.domainId, domainId),
        eq(mailboxes.localPart, localPart),
      ),
    );
  if (mailbox) return 'mailbox';
  const [alias] = await db
    .select({ id: aliases.id })
    .from(aliases)
    .where(
      and(
        eq(aliases.organizationId, organizationId),
        eq(aliases.domainId, domainId),
        eq(aliases.localPart, localPart),
      ),
    );
  return alias ? 'alias' : null;
}

// ---- app passwords ---------------------------------------------------------------------------------------

export async function insertAppPassword(db: Db, row: NewAppPassword): Promise<AppPasswordRow> {
  const [created] = await db.insert(mailboxAppPasswords).values(row).returning();
  return created;
}

export async function countAppPasswords(db: Db, mailboxId: string): Promise<number> {
  const [{ n }] = await db
    .select({ n: count() })
    .from(mailboxAppPasswords)
    .where(eq(mailboxAppPasswords.mailboxId, mailboxId));
  return Number(n);
}

export function appPasswordsOf(db: Db, organizationId: string, mailboxId: string): Promise<AppPasswordRow[]> {
  return db
    .select()
    .from(mailboxAppPasswords)
    .where(
      and(
        eq(mailboxAppPasswords.organizationId, organizationId),
        eq(mailboxAppPasswords.mailboxId, mailboxId),
      ),
    )
    .orderBy(asc(mailboxAppPasswords.createdAt), asc(mailboxAppPasswords.id));
}

export async function deleteAppPassword(
  db: Db,
  organizationId: string,
  mailboxId: string,
  id: string,
): Promise<AppPasswordRow | null> {
  const [row] = await db
    .delete(mailboxAppPasswords)
    .where(
      and(
        eq(mailboxAppPasswords.organizationId, organizationId),
        eq(mailboxAppPasswords.mailboxId, mailboxId),
        eq(mailboxAppPasswords.id, id),
      ),
    )
    .returning();
  return row ?? null;
}

export function deleteAppPasswords(
  db: Db,
  organizationId: string,
  mailboxId: string,
): Promise<AppPasswordRow[]> {
  return db
    .delete(mailboxAppPasswords)
    .where(
      and(
        eq(mailboxAppPasswords.organizationId, organizationId),
        eq(mailboxAppPasswords.mailboxId, mailboxId),
      ),
    )
    .returning();
}

export async function appPasswordByHash(
  db: Db,
  mailboxId: string,
  hash: string,
): Promise<AppPasswordRow | null> {
  const [row] = await db
    .select()
    .from(mailboxAppPasswords)
    .where(and(eq(mailboxAppPasswords.mailboxId, mailboxId), eq(mailboxAppPasswords.passwordHash, hash)));
  return row ?? null;
}

export async function touchAppPassword(db: Db, id: string, at: Date, ip: string): Promise<void> {
  await db
    .update(mailboxAppPasswords)
    .set({ lastUsedAt: at, lastUsedIp: ip })
    .where(eq(mailboxAppPasswords.id, id));
}
