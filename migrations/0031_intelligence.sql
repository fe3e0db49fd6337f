-- Mail intelligence (issue 21): what analysis found in each filed message, the queue that feeds the
-- analysis worker, each organisation's settings, what it taught the spam filter, and the statistics
-- that keywords are weighed against.

-- One row per analysed message, written by the intelligence worker through the messages service, which
-- owns it (GET /v1/messages/:id shows it; lists and search filter on it).
create table message_analyses (
  message_id uuid primary key references messages(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  spam boolean not null,
  spam_score real not null,                 -- 0..1: the built-in model's probability, or rspamd's score over its threshold
  spam_engine text not null check (spam_engine in ('builtin', 'rspamd')),
  spam_symbols jsonb not null default '[]', -- rspamd's symbols, or the built-in model's strongest features
  phishing text not null check (phishing in ('clean', 'suspicious', 'phishing')),
  phishing_score real not null,
  findings jsonb not null default '[]',     -- [{code, severity, evidence, detail?}]
  malware text,                             -- the signature clamd named; null when clean or not scanned
  language text not null,
  sentiment real not null,                  -- -1..1
  sentiment_label text not null check (sentiment_label in ('negative', 'neutral', 'positive')),
  category text not null,
  priority text not null check (priority in ('high', 'normal', 'low')),
  keywords text[] not null default '{}',
  entities jsonb not null default '{}',
  summary text not null default '',
  analyzed_at timestamptz not null default now()
);
create index message_analyses_org_category on message_analyses (organization_id, category);
create index message_analyses_org_flagged on message_analyses (organization_id)
  where spam or phishing <> 'clean' or malware is not null;

-- Messages filed and not yet analysed; the worker claims them in batches (SKIP LOCKED).
create table intelligence_queue (
  message_id uuid primary key references messages(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  -- Set when the message came in from outside (the MX, an external account): only those are moved to
  -- Junk or quarantined; a re-analysis only updates what is shown.
  act boolean not null default true,
  job_id uuid,                              -- the re-analysis job this row counts towards
  due_at timestamptz not null default now(),
  attempts integer not null default 0
);
create index intelligence_queue_due on intelligence_queue (due_at);

create table intelligence_settings (
  organization_id uuid primary key references organizations(id) on delete cascade,
  spam_threshold real,                      -- null: the installation's default
  junk_filing boolean not null default true,
  quarantine_malware boolean not null default true,
  llm_daily_tokens integer,                 -- null: the installation's default
  custom_categories jsonb,                  -- the model trained from category_examples; null: none
  updated_at timestamptz not null default now()
);

-- What users taught the spam filter: per token (a 32-bit hash), how many spam and ham messages held it;
-- token 0 counts the messages themselves.
create table spam_tokens (
  organization_id uuid not null references organizations(id) on delete cascade,
  token integer not null,
  spam integer not null default 0,
  ham integer not null default 0,
  primary key (organization_id, token)
);
-- The last verdict a user gave each message, so that a changed mind unlearns the old one first; rows
-- not yet learned wait for the worker.
create table spam_reports (
  message_id uuid primary key references messages(id) on delete cascade,
  organization_id uuid not null references organizations(id) on delete cascade,
  verdict text not null check (verdict in ('spam', 'ham')),
  learned text check (learned in ('spam', 'ham')),
  phishing boolean not null default false,
  source text not null,                     -- api, imap_move, imap_keyword
  user_id uuid,
  reported_at timestamptz not null default now()
);
create index spam_reports_unlearned on spam_reports (reported_at) where learned is distinct from verdict;

-- Document frequencies for TF-IDF keywords, per organisation.
create table term_documents (
  organization_id uuid not null references organizations(id) on delete cascade,
  term text not null,
  documents integer not null,
  primary key (organization_id, term)
);
create table term_corpus (
  organization_id uuid primary key references organizations(id) on delete cascade,
  documents integer not null default 0
);

-- Custom categories an organisation trains by example.
create table category_examples (
  organization_id uuid not null references organizations(id) on delete cascade,
  message_id uuid not null references messages(id) on delete cascade,
  category text not null,
  created_at timestamptz not null default now(),
  primary key (organization_id, message_id)
);

-- Tokens spent on the configured LLM, per organisation and UTC day.
create table llm_usage (
  organization_id uuid not null references organizations(id) on delete cascade,
  day date not null,
  tokens integer not null default 0,
  primary key (organization_id, day)
);
