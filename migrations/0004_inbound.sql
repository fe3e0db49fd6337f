-- Inbound mail: hosted mailboxes and their folders, aliases, routing rules, raw message blobs and the
-- message store.

create table mailboxes (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  domain_id uuid not null references domains(id) on delete cascade,
  local_part text not null,                 -- lower case
  address text not null,                    -- local_part@domain name
  display_name text not null default '',
  password_hash text,                       -- argon2id; null: the mailbox cannot log in
  quota_bytes bigint not null,
  used_bytes bigint not null default 0,
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (domain_id, local_part)
);
create index mailboxes_org_address on mailboxes (organization_id, address);

create table mailbox_folders (
  id uuid primary key,
  organization_id uuid not null,
  mailbox_id uuid not null references mailboxes(id) on delete cascade,
  name text not null,
  special_use text,                         -- \Inbox \Sent \Drafts \Junk \Trash \Archive (RFC 6154)
  uid_validity bigint not null,
  uid_next bigint not null default 1,
  created_at timestamptz not null default now(),
  unique (mailbox_id, name)
);

create table aliases (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  domain_id uuid not null references domains(id) on delete cascade,
  local_part text not null,
  address text not null,
  targets text[] not null,                  -- addresses, hosted or external
  description text not null default '',
  is_enabled boolean not null default true,
  expires_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (domain_id, local_part)
);
create index aliases_org_address on aliases (organization_id, address);

create table rules (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  domain_id uuid not null references domains(id) on delete cascade,
  name text not null,
  recipient text,                           -- the local part it applies to; null: every address of the domain
  priority integer not null default 100,    -- lower runs first
  conditions jsonb not null default '[]',   -- all must hold
  action text not null check (action in ('forward', 'redirect', 'store', 'block', 'drop')),
  targets text[] not null default '{}',     -- forward, redirect
  folder text,                              -- store
  is_enabled boolean not null default true,
  match_count bigint not null default 0,
  last_matched_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index rules_domain on rules (domain_id, priority);
create index rules_org on rules (organization_id, id);

-- Raw messages, behind the BlobStore interface (the database is its default home).
create table blobs (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  data bytea not null,
  created_at timestamptz not null default now()
);

create table messages (
  id uuid primary key,                      -- UUIDv7
  organization_id uuid not null references organizations(id) on delete cascade,
  domain_id uuid references domains(id) on delete set null,
  direction text not null check (direction in ('inbound', 'outbound')),
  status text not null check (status in
    ('pending', 'processing', 'delivered', 'failed', 'bounced', 'rejected', 'quarantined')),
  blob_id uuid not null,
  size integer not null,
  -- The envelope, as received.
  mail_from text not null,                  -- '' is the null sender
  rcpt_to text[] not null,
  remote_ip text,
  helo text,
  tls boolean not null default false,
  -- Filled in by processing.
  message_id_header text,
  in_reply_to text,
  "references" text[] not null default '{}',
  thread_id uuid,
  from_address text,
  from_name text,
  to_addresses text[] not null default '{}',
  cc_addresses text[] not null default '{}',
  subject text,
  sent_at timestamptz,
  has_attachments boolean not null default false,
  body_text text,                           -- the plain text, truncated, for search
  details jsonb,                            -- headers, parts, attachments
  auth jsonb,                               -- SPF, DKIM, DMARC, ARC verdicts and the Authentication-Results value
  search tsvector,
  parent_id uuid references messages(id) on delete set null, -- a forwarded copy's original
  error text,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  updated_at timestamptz not null default now()
);
create index messages_org_received on messages (organization_id, received_at desc, id desc);
create index messages_org_status on messages (organization_id, status, received_at desc);
create index messages_domain on messages (domain_id, received_at desc);
create index messages_thread on messages (organization_id, thread_id);
create index messages_message_id on messages (organization_id, message_id_header);
-- Threading looks the other way too: which messages already answer or cite a newly arrived one.
create index messages_in_reply_to on messages (organization_id, in_reply_to) where in_reply_to is not null;
create index messages_references on messages using gin ("references");
create index messages_parent on messages (parent_id) where parent_id is not null;
create index messages_search on messages using gin (search);
-- Message search chooses between walking an organisation's newest messages and reading every match
-- from the GIN index by the planner's estimate of how many messages match. The default statistics
-- keep the 1,000 most common lexemes; every other word is estimated alike (half the rarest kept
-- frequency, several thousand messages in a million). Tracking 10,000 lexemes makes the estimate of
-- mid-frequency words right too, for an ANALYZE that samples 300,000 rows instead of 30,000.
alter table messages alter column search set statistics 1000;
create index messages_unprocessed on messages (received_at) where status in ('pending', 'processing');

-- What routing did with each recipient of an inbound message.
create table message_routes (
  id uuid primary key,
  organization_id uuid not null,
  message_id uuid not null references messages(id) on delete cascade,
  recipient text not null,
  route text not null check (route in ('mailbox', 'alias', 'rule', 'catch_all', 'srs', 'none')),
  target_id uuid,                           -- the mailbox, alias or rule
  action text not null check (action in
    ('store', 'forward', 'redirect', 'block', 'drop', 'loop', 'quarantine', 'reject', 'fail')),
  destination text,                         -- the mailbox folder or external address
  detail text,
  created_at timestamptz not null default now()
);
create index message_routes_message on message_routes (message_id);
create index message_routes_target on message_routes (organization_id, route, target_id);

-- A hosted mailbox's copy of a message, per folder (IMAP UIDs).
create table mailbox_messages (
  id uuid primary key,
  organization_id uuid not null,
  mailbox_id uuid not null references mailboxes(id) on delete cascade,
  folder_id uuid not null references mailbox_folders(id) on delete cascade,
  message_id uuid not null references messages(id) on delete cascade,
  uid bigint not null,
  flags text[] not null default '{}',
  size integer not null,
  created_at timestamptz not null default now(),
  unique (folder_id, uid),
  unique (mailbox_id, message_id)           -- a message lands once per mailbox, however often it is processed
);
create index mailbox_messages_message on mailbox_messages (message_id);
