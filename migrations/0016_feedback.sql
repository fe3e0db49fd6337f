-- Feedback loops (issue 18, point 4): complaint reports (ARF, RFC 5965) that mailbox providers send about
-- mail an organisation sent, as they arrived at a VERP return path or a hosted domain's feedback address.
-- A report is `matched` when it names a message the organisation sent and a recipient it was delivered
-- to (VERP token verified, or the Message-ID of a stored outbound message); only matched reports of a
-- complaining kind suppress the recipient. Unmatched reports are kept for the record.
create table complaints (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  report_message_id uuid references messages(id) on delete set null,  -- the received report itself
  received_via text not null check (received_via in ('verp', 'feedback_address')),
  matched boolean not null,
  match_method text check (match_method in ('verp', 'message_id')),
  message_id uuid references messages(id) on delete set null,          -- the outbound message complained about
  delivery_id uuid references deliveries(id) on delete set null,
  domain_id uuid references domains(id) on delete set null,            -- that message's sending domain
  domain text not null,                     -- the hosted domain concerned: the sending domain, else where it arrived
  sender text,                              -- the sending mailbox (address whose send limits counted it)
  recipient text,                           -- the complaining address (lower case); unverified when unmatched
  feedback_type text,                       -- Feedback-Type, lower case; null when the report gave none
  suppressed boolean not null,              -- the recipient is on the suppression list because of it
  user_agent text,
  reporter text,                            -- the report's From address
  source_ip text,
  original_mail_from text,
  original_rcpt_to text[] not null default '{}',
  original_message_id text,                 -- the Message-ID of the message as the report returned it
  reported_domain text,
  arrival_date timestamptz,
  detail text,                              -- how it matched, or why it did not
  created_at timestamptz not null default now()
);
create index complaints_org_created on complaints (organization_id, created_at desc, id desc);
create index complaints_org_recipient on complaints (organization_id, recipient, created_at desc);
create index complaints_org_domain on complaints (organization_id, domain, created_at desc);
-- A message's recipient complains once: later reports about the same delivery are duplicates.
create unique index complaints_once on complaints (organization_id, message_id, recipient) where matched;

-- A feedback report reaching a VERP return path or a feedback address is routed as 'feedback'.
alter table message_routes drop constraint message_routes_route_check;
alter table message_routes add constraint message_routes_route_check
  check (route in ('mailbox', 'alias', 'rule', 'catch_all', 'srs', 'bounce', 'feedback', 'none'));
