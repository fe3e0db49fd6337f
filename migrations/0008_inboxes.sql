-- Sending infrastructure (issue 15): mailboxes with names, a status, a send limit of their own and an
-- exportable password; app passwords; long work tracked with progress (generation, provisioning).

alter table mailboxes
  add column first_name text not null default '',
  add column last_name text not null default '',
  -- suspended: cannot log in or send; its mail is still received (is_active false refuses mail too)
  add column status text not null default 'active' check (status in ('active', 'suspended')),
  -- recipients a day; null: MAILROOM_MAILBOX_SENDS_PER_DAY
  add column daily_send_limit integer check (daily_send_limit > 0),
  -- the password, sealed with AES-256-GCM under MAILROOM_SECRET_KEY, for credential exports; null: the
  -- mailbox was not created with export enabled (or has no password) and exports without one
  add column export_password text;

-- Passwords for one mail client or tool each: valid for SMTP submission and IMAP, never for the API.
-- They are generated (192 random bits), so a SHA-256 finds one without an argon2 check per password.
create table mailbox_app_passwords (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  mailbox_id uuid not null references mailboxes(id) on delete cascade,
  label text not null,
  password_hash text not null unique,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  last_used_ip text
);
create index mailbox_app_passwords_mailbox on mailbox_app_passwords (mailbox_id, created_at);

-- Long work a person watches: GET /v1/jobs/:id. This row is its progress and its lease: a worker runs
-- a job while it holds the lease and renews it; a job whose lease ran out (its worker died) is taken
-- over by another worker and resumes from `done`.
create table tracked_jobs (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  kind text not null,
  state text not null check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  done integer not null default 0,
  total integer not null default 0,
  -- per-item failures, {item, message}; the first 1,000 are kept, error_count counts them all
  errors jsonb not null default '[]',
  error_count integer not null default 0,
  -- what the job was asked to do, with its plan (resumed from after a restart)
  input jsonb not null,
  result jsonb,
  failure text,
  cancel_requested boolean not null default false,
  lease_owner text,
  lease_until timestamptz,
  idempotency_key text,
  request_hash text,
  created_by text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now()
);
create index tracked_jobs_org on tracked_jobs (organization_id, created_at desc);
create index tracked_jobs_unfinished on tracked_jobs (lease_until) where state in ('queued', 'running');
create unique index tracked_jobs_idempotency on tracked_jobs (organization_id, kind, idempotency_key)
  where idempotency_key is not null;

-- Provisioning: from domain names to working inboxes, a tracked job (tracked_jobs.id = provisions.id).
create table provisions (
  id uuid primary key references tracked_jobs(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  -- what was asked: registration, DNS provider, inboxes, verification timeout
  input jsonb not null,
  -- when provision.completed or provision.failed was emitted (once, in the same transaction)
  announced_at timestamptz,
  created_at timestamptz not null default now()
);

-- Each domain of a provisioning and the named step it is in; what the steps learned is in `detail`,
-- so a resumed run continues from the step it was in without redoing what is done.
create table provision_domains (
  id uuid primary key,
  provision_id uuid not null references provisions(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  position integer not null,
  name text not null,
  step text not null,
  state text not null check (state in ('pending', 'running', 'waiting', 'done', 'stuck', 'failed')),
  domain_id uuid,
  detail jsonb not null default '{}',
  -- [{step, started_at, finished_at}]
  timings jsonb not null default '[]',
  error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (provision_id, position)
);
