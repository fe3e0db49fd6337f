import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, asc, count, eq, like, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { aliases } from '../aliases/tables.ts';
import { type FolderRow, type MailboxRow, mailboxFolders, mailboxMessages, mailboxes } from './tables.ts';

export type NewMailbox = typeof mailboxes.$inferInsert;
export type NewFolder = typeof mailboxFolders.$inferInsert;

/** Namespace of the transaction-level advisory locks that serialise address claims within a domain. */
const ADDRESS_LOCK = 0x6d616c62; // 'malb'

export async function insertMailbox(db: Db, row: NewMailbox): Promise<MailboxRow> {
  const [created] = await db.insert(mailboxes).values(row).returning();
  return created;
}

export async function insertFolders(db: Db, rows: NewFolder[]): Promise<void> {
  await db.insert(mailboxFolders).values(rows);
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
