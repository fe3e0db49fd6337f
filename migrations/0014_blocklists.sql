-- DNS blocklist monitoring (issue 18, point 3): the organisations whose targets are checked on a
-- schedule, the IP addresses added through the API, and the current status of every target on every list.
create table blocklist_organizations (
  organization_id uuid primary key references organizations(id) on delete cascade,
  checked_at timestamptz,                   -- last complete check; null: never
  leased_until timestamptz                  -- a sweep is checking it until then
);
create index blocklist_organizations_due on blocklist_organizations (checked_at nulls first);

create table blocklist_ips (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  ip text not null,                         -- canonical form (IPv6 compressed, lower case)
  created_at timestamptz not null default now(),
  unique (organization_id, ip)
);

create table blocklist_results (
  organization_id uuid not null references organizations(id) on delete cascade,
  target text not null,                     -- an IP address or a domain name
  kind text not null check (kind in ('ip', 'domain')),
  list text not null,                       -- the list's zone
  listed boolean not null default false,    -- last known state: an error leaves it as it was
  code text,                                -- the answer(s), e.g. 127.0.0.2
  meaning text,
  error text,                               -- the last check failed (timeout, refused, odd answer)
  checked_at timestamptz not null,
  listed_since timestamptz,
  primary key (organization_id, target, list)
);

-- Organisations that already have domains are monitored from now on.
insert into blocklist_organizations (organization_id)
  select distinct organization_id from domains
  on conflict do nothing;
