-- Warmup (issue 18, points 1 and 2): mailboxes and external accounts enrolled in a warmup pool, the
-- messages the engine plans and sends between them with where each landed, and organisations' own
-- templates.
create table warmup_enrollments (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  mailbox_id uuid references mailboxes(id) on delete cascade,
  account_id uuid references mail_accounts(id) on delete cascade,
  address text not null,
  name text not null default '',
  pool text not null check (pool in ('organization', 'shared')),
  status text not null check (status in ('active', 'paused')),
  paused_reason text,                        -- 'manual' or 'health'
  slowed boolean not null default false,     -- health asked for half the ramp's volume
  ramp jsonb not null,                       -- {curve, start, increase, target, days}
  weekdays smallint[] not null,              -- 0 Sunday .. 6 Saturday, in time_zone
  start_hour smallint not null,
  end_hour smallint not null,
  time_zone text not null,
  reply_rate real not null,
  provider text not null,                    -- gmail, microsoft, yahoo or other, from the domain's MX
  warm_days integer not null default 0,      -- sending days so far: the ramp's position
  counted_on date,                           -- the last local date the ramp moved on (once a day at most)
  planned_on date,                           -- the last local date planned
  next_plan_at timestamptz not null,         -- when the next local day starts (planning is due)
  plan_times bigint[] not null default '{}', -- the rest of today's openings: send times, epoch ms, ascending
  next_send_at timestamptz,                  -- plan_times[1]: when the next opening is due
  leased_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((mailbox_id is null) <> (account_id is null)),
  check (start_hour >= 0 and end_hour <= 24 and start_hour < end_hour),
  check (reply_rate >= 0 and reply_rate <= 1)
);
create unique index warmup_enrollments_mailbox on warmup_enrollments (mailbox_id) where mailbox_id is not null;
create unique index warmup_enrollments_account on warmup_enrollments (account_id) where account_id is not null;
create index warmup_enrollments_org on warmup_enrollments (organization_id, id);
create index warmup_enrollments_due on warmup_enrollments (next_plan_at) where status = 'active';
create index warmup_enrollments_sending on warmup_enrollments (next_send_at) where status = 'active' and next_send_at is not null;
create index warmup_enrollments_pool on warmup_enrollments (pool, organization_id) where status = 'active';

create table warmup_messages (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,    -- the sender's
  enrollment_id uuid not null references warmup_enrollments(id) on delete cascade,
  -- Null once the recipient left warmup: the message stays in its sender's statistics.
  recipient_enrollment_id uuid references warmup_enrollments(id) on delete set null,
  token text not null,                       -- X-Entity-Ref-ID: 128 random bits the receiving side looks for
  thread_id uuid not null,
  parent_id uuid references warmup_messages(id) on delete set null,
  depth smallint not null default 0,         -- 0 a new conversation, 1 a reply, 2 a reply to the reply
  template text not null,
  day date not null,                         -- the sender's local date it was planned for
  due_at timestamptz not null,
  claimed_at timestamptz,                    -- when a tick took it for sending
  checked_at timestamptz,                    -- when the receiving side last looked for it
  status text not null default 'planned' check (status in ('planned', 'sending', 'sent', 'failed', 'cancelled')),
  error text,
  provider text not null,                    -- the recipient's provider
  subject text,
  message_id_header text,                    -- without angle brackets
  references_header text,
  sent_at timestamptz,
  placement text check (placement in ('inbox', 'spam', 'category', 'missing')),
  category text,                             -- Gmail's tab, when placement = category
  received_at timestamptz,
  rescued boolean not null default false,
  starred boolean not null default false,
  reply_planned boolean not null default false,
  archive_at timestamptz,
  archived_at timestamptz,
  created_at timestamptz not null default now()
);
create index warmup_messages_due on warmup_messages (due_at) where status = 'planned';
create index warmup_messages_awaiting on warmup_messages (checked_at nulls first, sent_at) where status = 'sent' and placement is null;
create index warmup_messages_recipient on warmup_messages (recipient_enrollment_id);
create index warmup_messages_sending on warmup_messages (claimed_at) where status = 'sending';
create index warmup_messages_parent on warmup_messages (parent_id) where parent_id is not null;
create index warmup_messages_archive on warmup_messages (archive_at) where archived_at is null and archive_at is not null;
create index warmup_messages_sender_day on warmup_messages (enrollment_id, day);

create table warmup_templates (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  kind text not null check (kind in ('opening', 'reply')),
  subject text not null,                     -- spintax and Liquid; ignored for replies (Re: the subject)
  body text not null,
  created_at timestamptz not null default now()
);
create index warmup_templates_org on warmup_templates (organization_id, kind);
