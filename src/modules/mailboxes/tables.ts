import { bigint, boolean, integer, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export const mailboxes = pgTable('mailboxes', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  domainId: uuid('domain_id').notNull(),
  localPart: text('local_part').notNull(),
  address: text('address').notNull(),
  displayName: text('display_name').notNull().default(''),
  firstName: text('first_name').notNull().default(''),
  lastName: text('last_name').notNull().default(''),
  passwordHash: text('password_hash'),
  /** The password sealed with Secrets (AES-256-GCM), for exports; null: exports carry no password. */
  exportPassword: text('export_password'),
  quotaBytes: bigint('quota_bytes', { mode: 'number' }).notNull(),
  usedBytes: bigint('used_bytes', { mode: 'number' }).notNull().default(0),
  /** False: the address refuses mail (and cannot log in). */
  isActive: boolean('is_active').notNull().default(true),
  /** Suspended: cannot log in or send; mail is still received. */
  status: text('status').$type<MailboxStatus>().notNull().default('active'),
  /** Recipients a day; null: the installation's MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY. */
  dailySendLimit: integer('daily_send_limit'),
  /** Mail sent through submission is copied into the Sent folder. */
  saveSent: boolean('save_sent').notNull().default(true),
  /** The highest UIDVALIDITY a deleted folder had; new folders get a higher one. */
  lastUidValidity: bigint('last_uid_validity', { mode: 'number' }).notNull().default(0),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type MailboxRow = typeof mailboxes.$inferSelect;
export type MailboxStatus = 'active' | 'suspended';

/** Generated passwords for one client each: SMTP and IMAP, never the API. SHA-256 at rest. */
export const mailboxAppPasswords = pgTable('mailbox_app_passwords', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  mailboxId: uuid('mailbox_id').notNull(),
  label: text('label').notNull(),
  passwordHash: text('password_hash').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  lastUsedAt: timestamptz('last_used_at'),
  lastUsedIp: text('last_used_ip'),
});
export type AppPasswordRow = typeof mailboxAppPasswords.$inferSelect;

export const mailboxFolders = pgTable('mailbox_folders', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  mailboxId: uuid('mailbox_id').notNull(),
  name: text('name').notNull(),
  specialUse: text('special_use'),
  uidValidity: bigint('uid_validity', { mode: 'number' }).notNull(),
  uidNext: bigint('uid_next', { mode: 'number' }).notNull().default(1),
  subscribed: boolean('subscribed').notNull().default(true),
  /** The folder's modification sequence (CONDSTORE): every change takes the next one. */
  highestModseq: bigint('highest_modseq', { mode: 'number' }).notNull().default(1),
  /** UIDs above this are \Recent to the next session that selects the folder read-write. */
  recentUid: bigint('recent_uid', { mode: 'number' }).notNull().default(0),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type FolderRow = typeof mailboxFolders.$inferSelect;

export const mailboxMessages = pgTable('mailbox_messages', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  mailboxId: uuid('mailbox_id').notNull(),
  folderId: uuid('folder_id').notNull(),
  messageId: uuid('message_id').notNull(),
  uid: bigint('uid', { mode: 'number' }).notNull(),
  flags: text('flags').array().notNull().default([]),
  size: integer('size').notNull(),
  /** The modseq of the copy's last change (arrival, flags, move). */
  modseq: bigint('modseq', { mode: 'number' }).notNull().default(1),
  /** Filed by delivery: unique per mailbox, so re-processing never files a message twice. */
  delivered: boolean('delivered').notNull().default(false),
  /** IMAP's INTERNALDATE. */
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

/** UIDs expunged from a folder, with the modseq of the expunge (QRESYNC's VANISHED). */
export const mailboxExpunged = pgTable('mailbox_expunged', {
  organizationId: uuid('organization_id').notNull(),
  folderId: uuid('folder_id').notNull(),
  uid: bigint('uid', { mode: 'number' }).notNull(),
  modseq: bigint('modseq', { mode: 'number' }).notNull(),
  expungedAt: timestamptz('expunged_at').notNull().defaultNow(),
});
