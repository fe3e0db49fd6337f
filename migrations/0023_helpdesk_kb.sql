-- Helpdesk knowledge base and chatbot (issue 19, item 7): articles in categories with full-text search,
-- and the chatbot's conversations, which answer from the published articles and open a ticket with
-- the transcript when they cannot.

create table helpdesk_kb_categories (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  description text,
  position integer not null default 0,     -- display order
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);
create index helpdesk_kb_categories_org on helpdesk_kb_categories (organization_id, position, name);

create table helpdesk_kb_articles (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  category_id uuid references helpdesk_kb_categories(id) on delete set null,
  title text not null,
  slug text not null,                      -- lower case, [a-z0-9-]: the public link's last segment
  body text not null,                      -- Markdown or plain text
  tags text[] not null default '{}',
  status text not null check (status in ('draft', 'published')),
  -- English stemming; title weighs A, tags B, body C. Written by the store with the row.
  search tsvector not null default ''::tsvector,
  published_at timestamptz,
  created_by uuid references users(id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, slug)
);
create index helpdesk_kb_articles_org on helpdesk_kb_articles (organization_id, updated_at desc, id desc);
create index helpdesk_kb_articles_category on helpdesk_kb_articles (category_id);
create index helpdesk_kb_articles_search on helpdesk_kb_articles using gin (search);
create index helpdesk_kb_articles_tags on helpdesk_kb_articles using gin (tags);

-- Per organisation: where customers read articles, and how the chatbot decides.
create table helpdesk_kb_settings (
  organization_id uuid primary key references organizations(id) on delete cascade,
  public_url text,                         -- articles link to <public_url>/<slug>
  min_score real not null default 0.5 check (min_score >= 0 and min_score <= 1),
  escalate_after smallint not null default 2 check (escalate_after between 1 and 20),
  use_llm boolean not null default true,
  updated_at timestamptz not null default now()
);

create table helpdesk_chat_conversations (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  desk_id uuid not null references helpdesk_desks(id) on delete cascade,
  -- open: the bot answers; awaiting_email: a person was asked for, the customer's address is missing;
  -- escalated: a ticket holds the transcript.
  status text not null check (status in ('open', 'awaiting_email', 'escalated')),
  customer_email text,                     -- lower case
  customer_name text,
  unanswered smallint not null default 0,  -- unanswered questions in a row
  ticket_id uuid references helpdesk_tickets(id) on delete set null,
  ticket_number integer,
  escalation_reason text check (escalation_reason in ('requested', 'unanswered')),
  messages integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index helpdesk_chat_conversations_org on helpdesk_chat_conversations (organization_id, created_at desc);

create table helpdesk_chat_messages (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  conversation_id uuid not null references helpdesk_chat_conversations(id) on delete cascade,
  role text not null check (role in ('customer', 'bot')),
  body text not null,
  answered_by text check (answered_by in ('search', 'llm')),  -- a bot message that answered
  sources jsonb not null default '[]',     -- [{article_id, title, url, score}]
  created_at timestamptz not null default now()
);
create index helpdesk_chat_messages_conversation on helpdesk_chat_messages (conversation_id, created_at, id);
