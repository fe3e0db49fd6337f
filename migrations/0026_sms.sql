-- SMS (issue 20, points 2, 3 and 6): the outbound queue, routing rules, per-organisation settings and
-- gateway throttles, received messages threaded per number, and the opt-out list.

create table sms_settings (
  organization_id uuid primary key references organizations(id) on delete cascade,
  default_region text not null default 'US',   -- ISO 3166 alpha-2, for numbers written without +
  default_sender text,                          -- a number or alphanumeric sender id
  max_parts smallint not null default 10 check (max_parts between 1 and 30),
  quiet_start text,                             -- 'HH:MM' recipient local time; both or neither
  quiet_end text,
  time_zone text not null default 'UTC',        -- recipients whose zone is unknown
  help_text text not null,
  updated_at timestamptz not null default now(),
  check ((quiet_start is null) = (quiet_end is null))
);

-- What a gateway account may take: messages a second, and (an Android phone) a daily limit with a
-- random pause between messages.
create table sms_account_throttles (
  provider_account_id uuid primary key references provider_accounts(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  per_second real check (per_second > 0),
  daily_limit integer check (daily_limit > 0),
  min_interval_ms integer not null default 0 check (min_interval_ms >= 0),
  max_interval_ms integer not null default 0 check (max_interval_ms >= min_interval_ms)
);
create index sms_account_throttles_org on sms_account_throttles (organization_id);

-- The pacing of an account with a daily limit or spacing, shared by every worker: one slot at a time.
create table sms_account_pacing (
  provider_account_id uuid primary key references provider_accounts(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  day date not null,
  sent integer not null default 0,
  next_at timestamptz not null
);

create table sms_routes (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  prefix text not null,                        -- calling-code digits ('44', '1415'), or '*' for any
  provider_account_id uuid not null references provider_accounts(id) on delete cascade,
  failover_account_id uuid references provider_accounts(id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, prefix)
);

create table sms_messages (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  kind text not null default 'standard' check (kind in ('standard', 'help')),
  to_number text not null,                     -- E.164
  country text,                                -- of to_number, for quiet hours
  sender text,
  body text not null,
  encoding text not null check (encoding in ('gsm7', 'ucs2')),
  characters integer not null,
  parts smallint not null,
  tags text[] not null default '{}',
  status text not null check (status in
    ('queued', 'scheduled', 'sending', 'sent', 'delivered', 'failed', 'undelivered', 'cancelled')),
  route_id uuid,                               -- no foreign keys: a message outlives its route and accounts
  provider_account_id uuid not null,           -- the account it goes (or went) through
  failover_account_id uuid,                    -- the route's second account
  on_failover boolean not null default false,
  campaign_id uuid,
  campaign_recipient_id uuid,
  send_at timestamptz,
  attempts integer not null default 0,
  next_attempt_at timestamptz not null,
  locked_until timestamptz,                    -- a worker's claim
  submitted_at timestamptz,                    -- the claim's submit began: its outcome is unknown until recorded
  provider text,
  provider_id text,
  error_code text,
  error_message text,
  price_amount numeric(16, 6),
  price_currency text,
  idempotency_key text,
  request_hash text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  sent_at timestamptz,
  delivered_at timestamptz,
  failed_at timestamptz
) with (fillfactor = 80);  -- room on the page for the updates that change no indexed column (HOT)
create index sms_messages_due on sms_messages (next_attempt_at) where status in ('queued', 'scheduled');
create index sms_messages_claimed on sms_messages (locked_until) where status = 'sending' and provider_id is null;
create index sms_messages_org on sms_messages (organization_id, id);
create index sms_messages_to on sms_messages (organization_id, to_number, id);
create index sms_messages_campaign on sms_messages (organization_id, campaign_id) where campaign_id is not null;
create index sms_messages_provider_id on sms_messages (provider_account_id, provider_id) where provider_id is not null;
create unique index sms_messages_key on sms_messages (organization_id, idempotency_key) where idempotency_key is not null;
create unique index sms_messages_recipient on sms_messages (organization_id, campaign_recipient_id)
  where campaign_recipient_id is not null;

-- Receipts that named a provider id no message had yet (a gateway's receipt can overtake the write of
-- its submit's answer): applied when the id is recorded.
create table sms_orphan_receipts (
  organization_id uuid not null references organizations(id) on delete cascade,
  provider_account_id uuid not null,
  provider_id text not null,
  status text not null,
  error_code text,
  price_amount numeric(16, 6),
  price_currency text,
  reported_at timestamptz not null,
  created_at timestamptz not null default now(),
  primary key (provider_account_id, provider_id, status)
);
create index sms_orphan_receipts_created on sms_orphan_receipts (created_at);

create table sms_inbound (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  provider_account_id uuid not null,
  provider_id text,
  from_number text not null,
  to_number text not null,
  body text not null,
  keyword text check (keyword in ('stop', 'start', 'help')),
  received_at timestamptz not null,
  created_at timestamptz not null default now()
);
create unique index sms_inbound_provider_id on sms_inbound (provider_account_id, provider_id) where provider_id is not null;
create index sms_inbound_from on sms_inbound (organization_id, from_number, received_at);

-- One row per remote number that wrote to the organisation: the conversation list.
create table sms_conversations (
  organization_id uuid not null references organizations(id) on delete cascade,
  number text not null,
  last_inbound_at timestamptz not null,
  last_body text not null,
  inbound_count integer not null,
  primary key (organization_id, number)
);
create index sms_conversations_recent on sms_conversations (organization_id, last_inbound_at desc);

create table sms_opt_outs (
  organization_id uuid not null references organizations(id) on delete cascade,
  number text not null,
  source text not null check (source in ('keyword', 'api')),
  keyword text,
  created_at timestamptz not null default now(),
  primary key (organization_id, number)
);
