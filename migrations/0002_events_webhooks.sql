-- Events (the outbox every module writes to in its own transaction) and webhooks that deliver them.

-- Not a foreign key to organizations: an organisation's deletion is itself an event, and events outlive
-- the rows they describe until retention removes them.
create table events (
  id uuid primary key,                      -- UUIDv7: time-ordered, the replay cursor
  organization_id uuid not null,
  type text not null,
  data jsonb not null,
  created_at timestamptz not null default now()
);
create index events_org_id on events (organization_id, id);
create index events_org_type_id on events (organization_id, type, id);
create index events_created_at on events (created_at);

create table webhook_endpoints (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  url text not null,
  description text not null default '',
  event_types text[] not null default '{}', -- empty: every type; `prefix.*` matches a family
  enabled boolean not null default true,
  secret text not null,                     -- AES-256-GCM under MAILROOM_SECRET_KEY
  previous_secret text,                     -- still signed with until previous_secret_expires_at
  previous_secret_expires_at timestamptz,
  failing_since timestamptz,                -- first failure since the last success
  disabled_at timestamptz,
  disabled_reason text,
  lease_owner text,                         -- the worker draining this endpoint's queue (keeps order)
  lease_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index webhook_endpoints_org on webhook_endpoints (organization_id, id);

create table webhook_deliveries (
  id uuid primary key,                      -- UUIDv7: delivery order per endpoint
  organization_id uuid not null,
  endpoint_id uuid not null references webhook_endpoints(id) on delete cascade,
  event_id uuid,                            -- null for test messages
  event_type text not null,
  payload jsonb,                            -- test messages only; event deliveries read the event
  status text not null default 'pending',   -- pending | succeeded | failed
  attempts integer not null default 0,
  next_attempt_at timestamptz,
  last_attempt_at timestamptz,
  last_status_code integer,
  last_error text,
  replay_of uuid,
  created_at timestamptz not null default now()
);
-- Due messages are read per endpoint in delivery order; the few waiting for a retry are skipped.
create index webhook_deliveries_due on webhook_deliveries (endpoint_id, id) where status = 'pending';
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, id);
create index webhook_deliveries_created_at on webhook_deliveries (created_at);

create table webhook_attempts (
  id uuid primary key,
  organization_id uuid not null,
  delivery_id uuid not null references webhook_deliveries(id) on delete cascade,
  endpoint_id uuid not null,
  attempted_at timestamptz not null default now(),
  duration_ms integer not null,
  status_code integer,
  response_body text,                       -- first 2 KiB
  error text
);
create index webhook_attempts_delivery on webhook_attempts (delivery_id, attempted_at);
