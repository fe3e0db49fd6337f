-- Backups (helpdesk issue, item 10): an organisation's whole data as a streamed archive. Archives made by
-- POST /v1/admin/backups, or uploaded for a restore, are kept here in chunks, so that whichever process
-- wrote one, any API process can serve it. These are the installation's tables, not an organisation's:
-- they have no organization_id column, and no backup contains another backup.
create table backup_archives (
  id uuid primary key,
  origin text not null check (origin in ('backup', 'upload')),
  state text not null check (state in ('writing', 'complete', 'failed')),
  -- the organisation the archive holds, as its header names it (no foreign key: a backup outlives it)
  source_organization_id uuid not null,
  source_organization_name text not null default '',
  -- the tracked job that writes it (origin 'backup'), and the organisation that job is filed under
  job_id uuid,
  job_organization_id uuid,
  size bigint not null default 0,           -- bytes of the compressed archive
  sha256 text,                              -- of the compressed archive, once complete
  header jsonb,                             -- the archive's header: format, version, tables, row counts
  summary jsonb,                            -- its trailer: rows and checksums per table
  failure text,
  created_by uuid,                          -- the platform administrator
  created_at timestamptz not null default now(),
  completed_at timestamptz
);
create index backup_archives_created on backup_archives (created_at desc, id desc);

create table backup_archive_chunks (
  archive_id uuid not null references backup_archives(id) on delete cascade,
  seq integer not null,
  data bytea not null,
  primary key (archive_id, seq)
);
-- Compressed already: stored as they are.
alter table backup_archive_chunks alter column data set storage external;
