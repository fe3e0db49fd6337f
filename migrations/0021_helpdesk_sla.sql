-- Helpdesk SLA (issue 19, item 5): business-hours calendars, SLA policies chosen by priority, category and
-- customer organisation, and per ticket the timers of its targets (first response, next response,
-- resolution) that a once-a-minute sweep turns into warnings, breaches and escalation steps.

create table helpdesk_sla_calendars (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  time_zone text not null,                  -- IANA name
  hours jsonb not null,                     -- [{day 0..6, start "HH:MM", end "HH:MM"}]
  holidays text[] not null default '{}',    -- local dates YYYY-MM-DD
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);

create table helpdesk_sla_policies (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  position integer not null,                -- the first matching policy (lowest position) applies
  enabled boolean not null default true,
  priorities text[] not null default '{}',  -- empty: any
  category_ids uuid[] not null default '{}',
  customer_ids uuid[] not null default '{}',
  first_response_minutes integer,
  next_response_minutes integer,
  resolution_minutes integer,
  calendar_id uuid references helpdesk_sla_calendars(id) on delete restrict,  -- null: 24/7
  warn_at real,                             -- share of a target after which it warns; null: no warning
  escalations jsonb not null default '[]',  -- [{at, target, actions: [...]}]
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);
create index helpdesk_sla_policies_org on helpdesk_sla_policies (organization_id, position);

-- What the SLA knows of each ticket: the policy that applies, the ticket as last seen (the events'
-- snapshot, for the status transitions and for the warning and breach events), and whether it waits for
-- an agent's reply.
create table helpdesk_sla_tickets (
  ticket_id uuid primary key references helpdesk_tickets(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  policy_id uuid references helpdesk_sla_policies(id) on delete set null,
  status text not null,
  responded boolean not null default false, -- an agent answered in public
  awaiting_since timestamptz,               -- a customer's public comment since the last agent reply
  created_at timestamptz not null,          -- the ticket's
  snapshot jsonb not null,
  updated_at timestamptz not null default now()
);

-- One timer per ticket and target. Business time counts from `counted_from` (null unless running) on top
-- of `elapsed_ms`; `warn_at` and `due_at` are when a running timer reaches its warning share and its
-- target. The sweep claims running timers past either instant whose flag is not yet set.
create table helpdesk_sla_timers (
  ticket_id uuid not null references helpdesk_tickets(id) on delete cascade,
  target text not null check (target in ('first_response', 'next_response', 'resolution')),
  organization_id uuid not null references organizations(id) on delete cascade,
  policy_id uuid references helpdesk_sla_policies(id) on delete set null,
  calendar_id uuid references helpdesk_sla_calendars(id) on delete set null,
  target_minutes integer not null,
  warn_share real,
  state text not null check (state in ('running', 'paused', 'met', 'stopped')),
  started_at timestamptz not null,
  counted_from timestamptz,
  elapsed_ms bigint not null default 0,
  warn_at timestamptz,
  due_at timestamptz,
  warned boolean not null default false,
  breached boolean not null default false,
  warned_at timestamptz,
  breached_at timestamptz,
  met_at timestamptz,
  primary key (ticket_id, target)
);
create index helpdesk_sla_timers_warn on helpdesk_sla_timers (warn_at)
  where state = 'running' and not warned;
create index helpdesk_sla_timers_due on helpdesk_sla_timers (due_at)
  where state = 'running' and not breached;
create index helpdesk_sla_timers_calendar on helpdesk_sla_timers (calendar_id)
  where state = 'running';
