-- SMS templates, contacts, contact lists, CSV imports and campaigns (issue 20, points 4 and 5). Sending
-- itself (the queue, gateways, opt-outs) belongs to the sms module; campaigns hand their messages to it.

create table sms_templates (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  body text not null,                        -- Liquid: {{ contact.name }}, {{ contact.fields.x }}, {{ organization.name }}
  description text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);

create table sms_contacts (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  phone text not null,                       -- E.164
  name text,
  fields jsonb not null default '{}',        -- the organisation's own fields, flat: {"company": "Acme"}
  tags text[] not null default '{}',
  -- The lists it is on. An array rather than a table of memberships: an import puts 100,000 contacts on
  -- a list in the statement that writes them, with no row (and foreign key checks) per membership.
  list_ids uuid[] not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, phone)
);
-- Lists page newest first by id (UUIDv7: time-ordered).
create index sms_contacts_by_org on sms_contacts (organization_id, id);
create index sms_contacts_tags on sms_contacts using gin (tags);
create index sms_contacts_lists on sms_contacts using gin (list_ids);

create table sms_lists (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  description text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);


-- A CSV import: the file is a blob, the work a tracked job (GET /v1/jobs/:id shows progress and row errors).
create table sms_contact_imports (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  job_id uuid not null references tracked_jobs(id) on delete cascade,
  blob_id uuid not null,
  filename text,
  size integer not null,
  sha256 text not null,                      -- hex; an identical file is refused while an import of it stands
  options jsonb not null,                    -- mapping, on_duplicate, list, region, tags, delimiter
  rows integer not null default 0,           -- data rows read so far
  created integer not null default 0,
  updated integer not null default 0,
  skipped integer not null default 0,
  failed integer not null default 0,
  created_by text,
  created_at timestamptz not null default now()
);
create index sms_contact_imports_by_hash on sms_contact_imports (organization_id, sha256);
create index sms_contact_imports_by_org on sms_contact_imports (organization_id, id);

create table sms_campaigns (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  status text not null check (status in ('draft', 'scheduled', 'active', 'paused', 'completed', 'cancelled')),
  template_id uuid references sms_templates(id) on delete set null,
  list_id uuid references sms_lists(id) on delete set null,
  body text,                                 -- the template's body, taken when the campaign starts
  sender text,
  provider_account_id uuid,
  route_id uuid,
  tags text[] not null default '{}',
  time_zone text not null,                   -- IANA name the window and the daily limit are read in
  window_days smallint[] not null,           -- 0 Sunday .. 6 Saturday
  window_start smallint not null,            -- minutes after local midnight, inclusive
  window_end smallint not null,              -- exclusive; 1440 is the end of the day
  daily_limit integer,                       -- messages handed to the queue per local day
  start_at timestamptz,
  job_id uuid,                               -- the tracked job that drives it now
  snapshot_at timestamptz,                   -- when its recipients were taken from the list
  total integer not null default 0,
  excluded integer not null default 0,       -- list members left out at the snapshot (opted out)
  day date,                                  -- the local day day_count counts
  day_count integer not null default 0,
  started_at timestamptz,
  paused_at timestamptz,
  completed_at timestamptz,
  cancelled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index sms_campaigns_by_org on sms_campaigns (organization_id, id);

-- organization_id without a foreign key of its own: the campaign's cascades, and a snapshot writes these
-- rows by the hundred thousand (each foreign key is a check per row).
create table sms_campaign_recipients (
  id uuid primary key,
  organization_id uuid not null,
  campaign_id uuid not null references sms_campaigns(id) on delete cascade,
  seq integer not null,                      -- the order they are sent in (1..total)
  contact_id uuid references sms_contacts(id) on delete set null,
  phone text not null,
  status text not null check (status in ('pending', 'queued', 'sent', 'delivered', 'failed', 'undelivered', 'skipped', 'cancelled')),
  message_id uuid,                           -- the sms module's message, once handed over
  error_code text,
  error text,
  attempts smallint not null default 0,      -- times handed to the queue (a pause returns it to pending)
  queued_at timestamptz,
  sent_at timestamptz,
  delivered_at timestamptz,
  failed_at timestamptz,
  updated_at timestamptz not null default now(),
  unique (campaign_id, seq)
);
create index sms_campaign_recipients_status on sms_campaign_recipients (campaign_id, status, seq);
create index sms_campaign_recipients_phone on sms_campaign_recipients (campaign_id, phone);
-- The sms module's events name the message: its recipient is found by it.
create index sms_campaign_recipients_message on sms_campaign_recipients (message_id) where message_id is not null;

-- UUIDv7 (RFC 9562) made in SQL, for the rows a snapshot creates in one statement: the Unix time in
-- milliseconds, then random bits, with the version nibble set to 7.
create function sms_uuid_v7() returns uuid language sql volatile as $$
  select encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
    placing substring(int8send((extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
    from 1 for 6), 52, 1), 53, 1), 'hex')::uuid
$$;
