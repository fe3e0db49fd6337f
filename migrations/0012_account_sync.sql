-- Syncing external accounts (issue 17): their folders and messages in Mailroom's message store.
-- A synced message is a `messages` row with direction 'synced' and its account; each copy of it on the
-- remote server (a folder and a UID there) is an `account_messages` row, so one message in several
-- folders or Gmail labels is stored once.
alter table messages drop constraint messages_direction_check;
alter table messages add constraint messages_direction_check
  check (direction in ('inbound', 'outbound', 'stored', 'synced'));
alter table messages add column account_id uuid references mail_accounts(id) on delete cascade;
create index messages_account on messages (account_id, received_at desc) where account_id is not null;

alter table mail_accounts
  -- the first sync reaches this many days back (newest first); later arrivals are always synced
  add column sync_days integer not null default 30,
  -- the server's capabilities as last seen (CONDSTORE, QRESYNC, IDLE, X-GM-EXT-1 …)
  add column capabilities text[] not null default '{}',
  add column last_synced_at timestamptz,
  -- the worker that owns the account's connection, until lease_until (renewed while it lives)
  add column lease_owner text,
  add column lease_until timestamptz;
create index mail_accounts_lease on mail_accounts (lease_until);

-- Workers that sync accounts, seen recently: the accounts are spread evenly over the live ones.
create table account_workers (
  id text primary key,
  seen_at timestamptz not null default now()
);

create table account_folders (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  account_id uuid not null references mail_accounts(id) on delete cascade,
  path text not null,                      -- the server's name for it (Unicode)
  delimiter text,
  special_use text,                        -- \Sent, \Trash, \All …
  uid_validity bigint,
  uid_next bigint not null default 1,      -- UIDs below this were seen by the sync
  highest_modseq bigint,                   -- CONDSTORE: changes up to this were synced
  -- the oldest UID the sync keeps: messages below the first sync's window are left on the server
  low_uid bigint not null default 1,
  last_synced_at timestamptz,
  unique (account_id, path)
);

create table account_messages (
  organization_id uuid not null,
  account_id uuid not null references mail_accounts(id) on delete cascade,
  folder_id uuid not null references account_folders(id) on delete cascade,
  uid bigint not null,
  message_id uuid not null references messages(id) on delete cascade,
  flags text[] not null default '{}',
  modseq bigint,
  -- Gmail's X-GM-MSGID (or RFC 8474's EMAILID): the same message in another folder or label
  email_id text,
  labels text[] not null default '{}',     -- Gmail's X-GM-LABELS
  primary key (folder_id, uid)
);
create index account_messages_message on account_messages (message_id);
create index account_messages_email on account_messages (account_id, email_id) where email_id is not null;
