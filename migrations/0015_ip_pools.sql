-- Sending IPs and IP pools (issue 18, point 7). The installation's sending IPs (MAILROOM_OUTBOUND_IPS)
-- with their warmup start, daily usage and PTR check; each organisation's pools of them, the pools
-- assigned to its domains and mailboxes; and the local address each delivery attempt left from.

-- Installation-wide: one row per sending IP, whoever sends through it.
create table sending_ips (
  ip text primary key,                      -- canonical form (IPv6 compressed, lower case)
  first_used_on date,                       -- warmup day 1 (UTC); null: never used yet
  ptr_status text check (ptr_status in ('pass', 'fail', 'error')),  -- null: never checked
  ptr_names text[] not null default '{}',
  ptr_confirmed text[] not null default '{}',  -- PTR names that resolve back to the IP (FCrDNS)
  helo_name text,                           -- the HELO name the check compared with
  ptr_findings jsonb not null default '[]',
  ptr_checked_at timestamptz,
  ptr_passed boolean,                       -- last definite result (an error leaves it as it was)
  leased_until timestamptz                  -- a scheduled check is checking it until then
);

-- Per IP and UTC day: what counts against warmup caps, and what was sent.
create table sending_ip_usage (
  ip text not null,
  day date not null,
  taken integer not null default 0,         -- counted against caps: blocks reserved by workers, plus uncapped use
  granted integer not null default 0,       -- the last block granted (read back by the worker that asked)
  sent integer not null default 0,          -- recipients handed to a connection bound to the IP
  primary key (ip, day)
);

create table ip_pools (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  warmup text not null default 'normal' check (warmup in ('none', 'slow', 'normal', 'fast', 'custom')),
  warmup_caps integer[],                    -- the custom curve: day 1, day 2, ...; unlimited after
  is_default boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);
-- One default pool per organisation.
create unique index ip_pools_default on ip_pools (organization_id) where is_default;

create table ip_pool_ips (
  pool_id uuid not null references ip_pools(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  ip text not null,
  added_at timestamptz not null default now(),
  primary key (pool_id, ip)
);
create index ip_pool_ips_ip on ip_pool_ips (ip);

-- A domain's or a mailbox's pool (a mailbox's wins over its domain's). The name and the address are
-- copied (neither ever changes) so that delivery's lookups need no other module's tables.
create table ip_pool_domains (
  domain_id uuid primary key references domains(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  pool_id uuid not null references ip_pools(id),
  name text not null,
  created_at timestamptz not null default now()
);
create index ip_pool_domains_pool on ip_pool_domains (pool_id);

create table ip_pool_mailboxes (
  mailbox_id uuid primary key references mailboxes(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  pool_id uuid not null references ip_pools(id),
  address text not null,                    -- lower case
  created_at timestamptz not null default now()
);
create index ip_pool_mailboxes_pool on ip_pool_mailboxes (pool_id);

-- `ip_pool.capped` is announced once per organisation, pool and day, whichever worker saw it first.
create table ip_pool_cap_notices (
  organization_id uuid not null references organizations(id) on delete cascade,
  pool text not null,                       -- the pool's id, or 'default' for the installation's IPs
  day date not null,
  primary key (organization_id, pool, day)
);

-- The local address (one of MAILROOM_OUTBOUND_IPS) an attempt left from; null: the system chose.
alter table delivery_attempts add column source_ip text;
