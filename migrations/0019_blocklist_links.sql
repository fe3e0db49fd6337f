-- Blocklist monitoring of the links in an organisation's mail (issue 18, point 3): the registrable
-- domains its recent outbound mail links to, refreshed at each check and asked of the domain lists.
create table blocklist_links (
  organization_id uuid not null references organizations(id) on delete cascade,
  domain text not null,
  seen_at timestamptz not null,             -- the newest message that linked to it, at the last refresh
  primary key (organization_id, domain)
);
