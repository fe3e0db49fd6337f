import { bigint, jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';
import type { ArchiveHeader, ArchiveTrailer } from './archive.ts';

export type ArchiveOrigin = 'backup' | 'upload';
export type ArchiveState = 'writing' | 'complete' | 'failed';

/** An archive kept by the installation: made by a backup job, or uploaded for a restore. */
export const backupArchives = pgTable('backup_archives', {
  id: uuid('id').primaryKey(),
  origin: text('origin').$type<ArchiveOrigin>().notNull(),
  state: text('state').$type<ArchiveState>().notNull(),
  sourceOrganizationId: uuid('source_organization_id').notNull(),
  sourceOrganizationName: text('source_organization_name').notNull().default(''),
  jobId: uuid('job_id'),
  jobOrganizationId: uuid('job_organization_id'),
  size: bigint('size', { mode: 'number' }).notNull().default(0),
  sha256: text('sha256'),
  header: jsonb('header').$type<ArchiveHeader | null>(),
  summary: jsonb('summary').$type<ArchiveTrailer | null>(),
  failure: text('failure'),
  createdBy: uuid('created_by'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  completedAt: timestamptz('completed_at'),
});
export type ArchiveRow = typeof backupArchives.$inferSelect;
