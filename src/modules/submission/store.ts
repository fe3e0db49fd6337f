import type { Db } from '../../core/db.ts';
import { and, asc, count, eq } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { domains } from '../domains/tables.ts';
import { mailboxes } from '../mailboxes/tables.ts';
import { type SmtpCredentialRow, smtpCredentials } from './tables.ts';

export type NewSmtpCredential = typeof smtpCredentials.$inferInsert;

export async function insertCredential(db: Db, row: NewSmtpCredential): Promise<SmtpCredentialRow> {
  const [created] = await db.insert(smtpCredentials).values(row).returning();
  return created;
}

export async function listCredentials(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(smtpCredentials.organizationId, organizationId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(smtpCredentials)
      .where(where)
      .orderBy(asc(smtpCredentials.createdAt), asc(smtpCredentials.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(smtpCredentials).where(where),
  ]);
  return { rows, total };
}

export async function credentialById(
  db: Db,
  organizationId: string,
  id: string,
): Promise<SmtpCredentialRow | null> {
  const [row] = await db
    .select()
    .from(smtpCredentials)
    .where(and(eq(smtpCredentials.organizationId, organizationId), eq(smtpCredentials.id, id)));
  return row ?? null;
}

export async function updateCredential(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<NewSmtpCredential>,
): Promise<SmtpCredentialRow | null> {
  const [row] = await db
    .update(smtpCredentials)
    .set({ ...changes, updatedAt: new Date() })
    .where(and(eq(smtpCredentials.organizationId, organizationId), eq(smtpCredentials.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteCredential(
  db: Db,
  organizationId: string,
  id: string,
): Promise<SmtpCredentialRow | null> {
  const [row] = await db
    .delete(smtpCredentials)
    .where(and(eq(smtpCredentials.organizationId, organizationId), eq(smtpCredentials.id, id)))
    .returning();
  return row ?? null;
}

// ---- logins: the only lookups not scoped by organisation, since a login names none ---------------------

/** The credential with this (lower case) username, in whichever organisation holds it. */
export async function credentialByUsername(db: Db, username: string): Promise<SmtpCredentialRow | null> {
  const [row] = await db.select().from(smtpCredentials).where(eq(smtpCredentials.username, username));
  return row ?? null;
}

export async function touchCredential(db: Db, id: string, at: Date, ip: string): Promise<void> {
  await db.update(smtpCredentials).set({ lastUsedAt: at, lastUsedIp: ip }).where(eq(smtpCredentials.id, id));
}

export interface MailboxLogin {
  mailboxId: string;
  organizationId: string;
  address: string;
  passwordHash: string | null;
  isActive: boolean;
  status: 'active' | 'suspended';
}

/**
 * The mailbox with this (normalised) address on a hosted domain: active, its ownership proven (as the MX
 * resolves recipients). Only one organisation can hold a proven domain, so the address names one mailbox.
 */
export async function mailboxLogin(db: Db, address: string): Promise<MailboxLogin | null> {
  const [row] = await db
    .select({
      mailboxId: mailboxes.id,
      organizationId: mailboxes.organizationId,
      address: mailboxes.address,
      passwordHash: mailboxes.passwordHash,
      isActive: mailboxes.isActive,
      status: mailboxes.status,
    })
    .from(mailboxes)
    .innerJoin(
      domains,
      and(eq(domains.id, mailboxes.domainId), eq(domains.organizationId, mailboxes.organizationId)),
    )
    .where(
      and(eq(mailboxes.address, address), eq(domains.ownershipVerified, true), eq(domains.isActive, true)),
    )
    .limit(1);
  return row ?? null;
}
