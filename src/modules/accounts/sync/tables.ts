import { bigint, pgTable, primaryKey, text, timestamptz, uuid } from '../../../core/orm.ts';

/** A folder of an external account, and how far its sync has come. */
export const accountFolders = pgTable('account_folders', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  accountId: uuid('account_id').notNull(),
  path: text('path').notNull(),
  delimiter: text('delimiter'),
  specialUse: text('special_use'),
  uidValidity: bigint('uid_validity', { mode: 'number' }),
  /** UIDs below this were seen by the sync. */
  uidNext: bigint('uid_next', { mode: 'number' }).notNull().default(1),
  /** CONDSTORE: changes up to this modseq were synced. */
  highestModseq: bigint('highest_modseq', { mode: 'bigint' }),
  /** The oldest UID kept: older messages (before the first sync's window) stay on the server only. */
  lowUid: bigint('low_uid', { mode: 'number' }).notNull().default(1),
  lastSyncedAt: timestamptz('last_synced_at'),
});
export type AccountFolderRow = typeof accountFolders.$inferSelect;

/** One copy of a synced message on the server: a folder and a UID there. */
export const accountMessages = pgTable(
  'account_messages',
  {
    organizationId: uuid('organization_id').notNull(),
    accountId: uuid('account_id').notNull(),
    folderId: uuid('folder_id').notNull(),
    uid: bigint('uid', { mode: 'number' }).notNull(),
    messageId: uuid('message_id').notNull(),
    flags: text('flags').array().notNull().default([]),
    modseq: bigint('modseq', { mode: 'bigint' }),
    /** Gmail's X-GM-MSGID (or RFC 8474 EMAILID). */
    emailId: text('email_id'),
    /** Gmail's X-GM-LABELS. */
    labels: text('labels').array().notNull().default([]),
  },
  (t) => [primaryKey({ columns: [t.folderId, t.uid] })],
);
export type AccountMessageRow = typeof accountMessages.$inferSelect;
