-- Health scores and auto-repair (issue 18, points 5 and 6): a score per domain and per mailbox with its
-- findings, recomputed on a schedule and when inputs change; its history; each organisation's repair
-- policy; the actions taken (and undone). Delivery gains what holding a paused sender's mail needs:
-- sending pauses, the 'sender_paused' hold, and what each outbound message says about list mail.

-- One row per scored domain or mailbox: the current score and findings, and when it is due again.
create table health_scores (
  kind text not null check (kind in ('domain', 'mailbox')),
  subject_id uuid not null,                 -- the domain's or the mailbox's id
  organization_id uuid not null references organizations(id) on delete cascade,
  domain_id uuid not null references domains(id) on delete cascade,
  mailbox_id uuid references mailboxes(id) on delete cascade,
  name text not null,                       -- the domain name or the mailbox address
  score smallint,                           -- 0-100; null until first computed
  band text check (band in ('good', 'fair', 'poor', 'critical')),
  findings jsonb not null default '[]',
  computed_at timestamptz,
  changed_at timestamptz,                   -- the band or the findings last changed
  history_at timestamptz,                   -- the last point written to health_history
  below_since timestamptz,                  -- the score has been under the pause threshold since
  acknowledged_at timestamptz,              -- a person undid a repair: not repeated until it recovers
  paused_action_id uuid,                    -- the pause in effect (health_actions)
  slowed_action_id uuid,                    -- the warmup slow-down in effect
  due_at timestamptz not null default now(),
  leased_until timestamptz,                 -- a sweep is computing it until then
  marks integer not null default 0,         -- inputs changed while it was computed: due again at once
  primary key (kind, subject_id),
  check ((kind = 'mailbox') = (mailbox_id is not null))
);
create index health_scores_due on health_scores (due_at);
create index health_scores_list on health_scores (organization_id, kind, score);
create index health_scores_domain on health_scores (domain_id);

-- Scores over time: a point when the score or the findings change, and at least one a day.
create table health_history (
  id uuid primary key,                      -- UUIDv7: orders points written at the same time
  kind text not null,
  subject_id uuid not null,
  organization_id uuid not null,
  at timestamptz not null,
  score smallint not null,
  band text not null,
  codes text[] not null,
  foreign key (kind, subject_id) references health_scores (kind, subject_id) on delete cascade
);
create index health_history_subject on health_history (kind, subject_id, at desc);

-- Each organisation's auto-repair policy (no row: the defaults).
create table health_policies (
  organization_id uuid primary key references organizations(id) on delete cascade,
  enabled boolean not null,
  pause_below smallint not null check (pause_below between 0 and 100),
  slow_warmup_below smallint not null check (slow_warmup_below between 0 and 100),
  auto_resume boolean not null,
  resume_at smallint not null check (resume_at between 0 and 100),
  republish_dns boolean not null,
  notify_email boolean not null,
  updated_at timestamptz not null default now(),
  updated_by uuid
);

-- Every repair action, automatic or asked for, with its reason; undoing one keeps the row.
create table health_actions (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  kind text not null check (kind in ('domain', 'mailbox')),
  subject_id uuid not null,
  domain_id uuid not null,
  name text not null,
  action text not null check (action in ('pause', 'slow_warmup', 'dns_republish', 'dkim_rotate')),
  automatic boolean not null,
  reason text not null,
  score smallint,                           -- the subject's score when it was taken
  details jsonb not null default '{}',
  state text not null check (state in ('applied', 'failed', 'undone')),
  error text,
  actor_id uuid,                            -- the user or API key that asked (null: automatic)
  created_at timestamptz not null,
  undone_at timestamptz,
  undone_by uuid,
  undo_reason text
);
create index health_actions_org on health_actions (organization_id, created_at desc);
create index health_actions_subject on health_actions (kind, subject_id, created_at desc);

-- Delivery: a paused sender's mail is held (hold_reason 'sender_paused'), not sent and not dropped. A
-- pause names a domain (all its mail) or an address (mail whose From is that address).
create table sending_pauses (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  domain_id uuid references domains(id) on delete cascade,
  address text,
  reason text not null,
  created_at timestamptz not null default now(),
  check ((domain_id is null) <> (address is null))
);
create unique index sending_pauses_domain on sending_pauses (organization_id, domain_id) where domain_id is not null;
create unique index sending_pauses_address on sending_pauses (organization_id, address) where address is not null;
-- Held recipients of a sender, found again on resume.
create index deliveries_sender_paused on deliveries (organization_id, message_id) where hold_reason = 'sender_paused';

-- What each outbound message says about list mail, recorded when it is queued: bulk (Precedence: bulk or
-- list, List-Id, List-Unsubscribe) and a valid RFC 8058 one-click unsubscribe.
alter table messages add column bulk boolean not null default false;
alter table messages add column one_click_unsubscribe boolean not null default false;
-- An organisation's outbound mail over a window (health's unsubscribe finding), without reading its inbound.
create index messages_outbound on messages (organization_id, received_at) where direction = 'outbound';

-- Every existing domain and mailbox is scored at the next sweep.
insert into health_scores (kind, subject_id, organization_id, domain_id, mailbox_id, name)
  select 'domain', id, organization_id, id, null, name from domains
  on conflict do nothing;
insert into health_scores (kind, subject_id, organization_id, domain_id, mailbox_id, name)
  select 'mailbox', id, organization_id, domain_id, id, address from mailboxes
  on conflict do nothing;
