-- Helpdesk insights (issue 19, items 8 and 9): Microsoft Teams channels notified of ticket events through
-- their Workflows incoming webhook, the queue of cards to post to them, and customer satisfaction (CSAT)
-- surveys answered from the one-click links of the resolution mail. Reports read the helpdesk's tables.

create table helpdesk_teams_channels (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  webhook_url text not null,                -- sealed (AES-256-GCM): the URL carries its own signature
  url_hint text not null,                   -- what the API shows: scheme, host and the last characters
  desk_ids uuid[] not null default '{}',    -- empty: every desk
  event_types text[] not null,              -- ticket.created, ticket.assigned, ticket.sla_warning, ...
  enabled boolean not null default true,
  last_success_at timestamptz,
  last_failure_at timestamptz,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);
create index helpdesk_teams_channels_org on helpdesk_teams_channels (organization_id) where enabled;

-- One card to post to one channel, queued in the transaction of the ticket event that caused it.
create table helpdesk_teams_deliveries (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  channel_id uuid not null references helpdesk_teams_channels(id) on delete cascade,
  event_id uuid,                            -- no foreign key: events are deleted after their retention
  kind text not null,                       -- the notification: ticket.created, ticket.assigned, ...
  ticket_id uuid,
  data jsonb not null,                      -- the event's data (the ticket as it was)
  status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz,
  lease_until timestamptz,                  -- a worker is posting it
  last_attempt_at timestamptz,
  last_status_code integer,
  last_error text,
  created_at timestamptz not null default now()
);
create index helpdesk_teams_deliveries_channel on helpdesk_teams_deliveries (channel_id, id desc);
create index helpdesk_teams_deliveries_due on helpdesk_teams_deliveries (next_attempt_at) where status = 'pending';
create index helpdesk_teams_deliveries_finished on helpdesk_teams_deliveries (created_at) where status <> 'pending';

-- One survey per resolution of a ticket: its link token is random, found by its hash, and kept sealed so
-- a retried resolution mail carries the same link.
create table helpdesk_csat_surveys (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  ticket_id uuid not null references helpdesk_tickets(id) on delete cascade,
  resolved_at timestamptz not null,         -- the resolution it asks about
  token_hash text not null unique,          -- sha256 of the link token
  token_sealed text not null,
  rating text check (rating in ('good', 'bad')),
  rated_at timestamptz,                     -- the first rating (changes are allowed for a while after it)
  changed_at timestamptz,
  created_at timestamptz not null default now(),
  unique (ticket_id, resolved_at)
);
create index helpdesk_csat_surveys_rated on helpdesk_csat_surveys (organization_id, rated_at) where rating is not null;
