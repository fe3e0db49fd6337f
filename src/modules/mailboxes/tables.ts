import { bigint, boolean, integer, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export const mailboxes = pgTable('mailboxes', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  domainId: uuid('domain_id').notNull(),
  localPart: text('local_part').notNull(),
  address: text('address').notNull(),
  displayName: text('display_name').notNull().default(''),
  passwordHash: text('password_hash'),
  quotaBytes: bigint('quota_bytes', { mode: 'number' }).notNull(),
  usedBytes: bigint('used_bytes', { mode: 'number' }).notNull().default(0),
  isActive: boolean('is_active').notNull().default(true),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type MailboxRow = typeof mailboxes.$inferSelect;

export const mailboxFolders = pgTable('mailbox_folders', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  mailboxId: uuid('mailbox_id').notNull(),
  name: text('name').notNull(),
  specialUse: text('special_use'),
  uidValidity: bigint('uid_validity', { mode: 'number' }).notNull(),
  uidNext: bigint('uid_next', { mode: 'number' }).notNull().default(1),
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
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
