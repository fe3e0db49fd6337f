-- Helpdesk templates and automation (issue 19, item 6): reply templates written in Liquid, rules that act
-- on tickets when they are created, updated or commented on, or when a time condition holds, and the log
-- of every rule's runs.

create table helpdesk_templates (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  subject text,                             -- Liquid; shown by previews (a reply keeps the thread's subject)
  body text not null,                       -- Liquid: ticket, requester, agent, desk
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);

create table helpdesk_automations (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  enabled boolean not null default true,
  position integer not null default 0,      -- rules of one trigger run in this order (then by age)
  trigger text not null check (trigger in ('ticket.created', 'ticket.updated', 'ticket.commented', 'time')),
  conditions jsonb not null default '[]',   -- [{field, op, value}], all must hold
  actions jsonb not null,                   -- [{type, ...}], in order
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);
create index helpdesk_automations_trigger on helpdesk_automations (organization_id, trigger, position)
  where enabled;
create index helpdesk_automations_time on helpdesk_automations (trigger) where enabled and trigger = 'time';

-- Every evaluation of a rule against a ticket: what triggered it, whether it matched, what it did.
create table helpdesk_automation_runs (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  automation_id uuid not null references helpdesk_automations(id) on delete cascade,
  ticket_id uuid not null references helpdesk_tickets(id) on delete cascade,
  ticket_number integer not null,
  trigger text not null,
  event_id uuid,                            -- the event evaluated (null for time rules)
  outcome text not null check (outcome in ('applied', 'not_matched', 'loop_stopped', 'failed')),
  actions jsonb not null default '[]',      -- what was done: [{type, ...}]
  error text,
  depth integer not null,                   -- how many rules led to the change evaluated
  chain uuid[] not null default '{}',       -- the rules that acted before in this chain
  created_at timestamptz not null default now()
);
-- Each event is evaluated once per rule, however often its job runs.
create unique index helpdesk_automation_runs_event on helpdesk_automation_runs (automation_id, event_id)
  where event_id is not null;
create index helpdesk_automation_runs_rule on helpdesk_automation_runs (automation_id, created_at desc, id desc);
create index helpdesk_automation_runs_ticket on helpdesk_automation_runs (automation_id, ticket_id, created_at)
  where outcome = 'applied';
create index helpdesk_automation_runs_created on helpdesk_automation_runs (created_at);

-- Time rules fire once per ticket per condition window: the ticket as it was (its updated_at) when the
-- rule fired. A ticket that changes since may match again.
create table helpdesk_automation_fires (
  automation_id uuid not null references helpdesk_automations(id) on delete cascade,
  ticket_id uuid not null references helpdesk_tickets(id) on delete cascade,
  ticket_updated_at timestamptz not null,
  fired_at timestamptz not null,
  primary key (automation_id, ticket_id)
);
