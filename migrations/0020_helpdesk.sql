-- Helpdesk (issue 19): desks bound to the organisation's addresses, tickets opened and continued by mail
-- or through the API, their comments, and the organisation of the work around them (categories,
-- departments, customer organisations, teams, agents). SLAs, automation, the knowledge base and Teams
-- notifications have their own migrations.

-- Agents are members of the organisation with a helpdesk role.
create table helpdesk_agents (
  organization_id uuid not null references organizations(id) on delete cascade,
  user_id uuid not null references users(id) on delete cascade,
  role text not null check (role in ('agent', 'supervisor', 'approver')),
  active boolean not null default true,
  created_at timestamptz not null default now(),
  primary key (organization_id, user_id)
);

create table helpdesk_teams (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  assignment text not null default 'manual' check (assignment in ('manual', 'round_robin', 'least_loaded')),
  last_assigned_user_id uuid,              -- where round-robin goes on from
  created_at timestamptz not null default now(),
  unique (organization_id, name)
);

create table helpdesk_team_members (
  team_id uuid not null references helpdesk_teams(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  user_id uuid not null references users(id) on delete cascade,
  primary key (team_id, user_id)
);

create table helpdesk_departments (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  created_at timestamptz not null default now(),
  unique (organization_id, name)
);

create table helpdesk_categories (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  needs_approval boolean not null default false,
  approver_ids uuid[] not null default '{}',  -- users (agents) who may approve or reject
  team_id uuid references helpdesk_teams(id) on delete set null,  -- where its tickets go
  created_at timestamptz not null default now(),
  unique (organization_id, name)
);

-- Customer organisations: requesters are matched to one by the domain of their address.
create table helpdesk_customers (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  domains text[] not null default '{}',      -- lower case
  notes text,
  created_at timestamptz not null default now(),
  unique (organization_id, name)
);
create index helpdesk_customers_domains on helpdesk_customers using gin (domains);

-- Requesters: people who write to a desk (or for whom an agent opened a ticket).
create table helpdesk_contacts (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  email text not null,                      -- lower case
  name text,
  customer_id uuid references helpdesk_customers(id) on delete set null,
  created_at timestamptz not null default now(),
  unique (organization_id, email)
);

create table helpdesk_desks (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  team_id uuid references helpdesk_teams(id) on delete set null,  -- new tickets go to this team
  default_priority text not null default 'normal' check (default_priority in ('low', 'normal', 'high', 'urgent')),
  custom_fields jsonb not null default '[]',  -- [{key, label, type, options, required}]
  signature text,
  auto_reply boolean not null default true,  -- acknowledge new tickets by mail
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);

-- The addresses a desk answers: each is a hosted mailbox's or an alias's; mail to it opens tickets.
create table helpdesk_desk_addresses (
  organization_id uuid not null references organizations(id) on delete cascade,
  address text not null,                    -- lower case
  desk_id uuid not null references helpdesk_desks(id) on delete cascade,
  mailbox_id uuid references mailboxes(id) on delete cascade,
  alias_id uuid references aliases(id) on delete cascade,
  position smallint not null,               -- the first is the desk's From address
  primary key (organization_id, address),
  check ((mailbox_id is null) <> (alias_id is null))
);
create index helpdesk_desk_addresses_desk on helpdesk_desk_addresses (desk_id, position);

create table helpdesk_ticket_numbers (
  organization_id uuid primary key references organizations(id) on delete cascade,
  last_number integer not null
);

create table helpdesk_tickets (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  number integer not null,
  desk_id uuid not null references helpdesk_desks(id) on delete restrict,
  subject text not null,
  requester_id uuid not null references helpdesk_contacts(id) on delete restrict,
  customer_id uuid references helpdesk_customers(id) on delete set null,
  category_id uuid references helpdesk_categories(id) on delete set null,
  department_id uuid references helpdesk_departments(id) on delete set null,
  team_id uuid references helpdesk_teams(id) on delete set null,
  assignee_id uuid references users(id) on delete set null,
  priority text not null check (priority in ('low', 'normal', 'high', 'urgent')),
  status text not null check (status in ('open', 'approval-pending', 'approved', 'rejected', 'in-progress',
                                         'pending', 'resolved', 'closed')),
  tags text[] not null default '{}',
  custom_fields jsonb not null default '{}',
  due_at timestamptz,
  source text not null check (source in ('mail', 'api', 'chat', 'split')),
  merged_into_id uuid references helpdesk_tickets(id) on delete set null,
  comments integer not null default 0,
  first_response_at timestamptz,            -- the first public reply of an agent
  last_customer_at timestamptz,
  last_agent_at timestamptz,
  resolved_at timestamptz,
  closed_at timestamptz,
  search tsvector not null default ''::tsvector,  -- subject, requester and every comment's text
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, number)
);
create index helpdesk_tickets_org_created on helpdesk_tickets (organization_id, created_at desc, id desc);
create index helpdesk_tickets_org_status on helpdesk_tickets (organization_id, status, created_at desc);
create index helpdesk_tickets_org_assignee on helpdesk_tickets (organization_id, assignee_id, status);
create index helpdesk_tickets_org_requester on helpdesk_tickets (organization_id, requester_id);
create index helpdesk_tickets_search on helpdesk_tickets using gin (search);
create index helpdesk_tickets_tags on helpdesk_tickets using gin (tags);
-- Sorting by priority (low < normal < high < urgent), with or without a status filter, walks an index.
create index helpdesk_tickets_org_priority on helpdesk_tickets
  (organization_id, (array_position(array['low', 'normal', 'high', 'urgent']::text[], priority)), id)
  include (priority);
create index helpdesk_tickets_org_status_priority on helpdesk_tickets
  (organization_id, status, (array_position(array['low', 'normal', 'high', 'urgent']::text[], priority)), id)
  include (priority);  -- counts by status and priority read only the index

create table helpdesk_comments (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  ticket_id uuid not null references helpdesk_tickets(id) on delete cascade,
  visibility text not null check (visibility in ('public', 'internal')),
  author_type text not null check (author_type in ('customer', 'agent', 'system')),
  author_user_id uuid references users(id) on delete set null,
  author_contact_id uuid references helpdesk_contacts(id) on delete set null,
  body text not null,
  message_id uuid references messages(id) on delete set null,   -- the mail it came in as or went out as
  message_id_header text,
  attachments jsonb not null default '[]',  -- [{filename, content_type, size}] of that mail
  mentions uuid[] not null default '{}',
  created_at timestamptz not null default now()
);
create index helpdesk_comments_ticket on helpdesk_comments (ticket_id, created_at, id);

-- Message-IDs of every mail of a ticket, both ways: In-Reply-To and References find the ticket by them.
create table helpdesk_ticket_messages (
  organization_id uuid not null references organizations(id) on delete cascade,
  message_id_header text not null,
  ticket_id uuid not null references helpdesk_tickets(id) on delete cascade,
  kind text not null default 'conversation' check (kind in ('conversation', 'approval')),
  approver_id uuid references users(id) on delete cascade,  -- for an approval request: to whom it went
  primary key (organization_id, message_id_header)
);
create index helpdesk_ticket_messages_ticket on helpdesk_ticket_messages (ticket_id);

-- Mail that reached a desk address, written in the same transaction as the message (transactional
-- outbox): a worker files each once, as a new ticket or a comment, or records why it did not.
create table helpdesk_intake (
  message_id uuid not null references messages(id) on delete cascade,
  desk_id uuid not null references helpdesk_desks(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  status text not null default 'pending' check (status in ('pending', 'filed', 'ignored')),
  reason text,
  ticket_id uuid references helpdesk_tickets(id) on delete set null,
  created_at timestamptz not null default now(),
  processed_at timestamptz,
  primary key (message_id, desk_id)
);
create index helpdesk_intake_pending on helpdesk_intake (created_at) where status = 'pending';
-- Loop protection counts what each sender filed to a desk within the hour.
create index helpdesk_intake_filed on helpdesk_intake (organization_id, desk_id, processed_at) where status = 'filed';

create table helpdesk_approvals (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  ticket_id uuid not null references helpdesk_tickets(id) on delete cascade,
  approver_id uuid not null references users(id) on delete cascade,
  decision text not null check (decision in ('approved', 'rejected')),
  comment text,
  via text not null check (via in ('api', 'mail')),
  created_at timestamptz not null default now()
);
create index helpdesk_approvals_ticket on helpdesk_approvals (ticket_id);
