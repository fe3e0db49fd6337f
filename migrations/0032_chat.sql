-- Mail chat (issue 21): every turn of a user's (or an API key's) conversation with their mail, and the
-- indexes that let chat find a person's mail and a folder's unread mail without reading the mailbox.

create table chat_turns (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  -- who asked: a signed-in user or an API key, never both
  user_id uuid references users(id) on delete cascade,
  api_key_id uuid references api_keys(id) on delete cascade,
  -- the mailbox or account the request named; null: the caller's own mail
  mailbox_id uuid,
  account_id uuid,
  text text not null,
  intent text not null
    check (intent in ('search', 'summarize', 'sentiment', 'analytics', 'compose_reply', 'smalltalk', 'unknown')),
  confidence real not null,
  params jsonb not null,                  -- the parsed parameters, people resolved to addresses
  answer text not null,
  answered_by text not null check (answered_by in ('llm', 'extractive', 'template')),
  llm text,                               -- what became of the model (used, not_configured, budget_exhausted …); null: never used
  citations jsonb not null default '[]',  -- [{message_id, subject, from, date, snippet}]
  data jsonb,                             -- the intent's figures: sentiment, analytics, a reply draft
  created_at timestamptz not null default now(),
  check ((user_id is null) <> (api_key_id is null))
);
create index chat_turns_user on chat_turns (organization_id, user_id, created_at desc, id desc)
  where user_id is not null;
create index chat_turns_api_key on chat_turns (organization_id, api_key_id, created_at desc, id desc)
  where api_key_id is not null;

-- "What did Alice send me last week": a sender's mail newest first, instead of walking every message of
-- the organisation and testing each sender. From addresses are stored as the mail wrote them.
create index messages_org_from on messages (organization_id, lower(from_address), received_at desc)
  where from_address is not null;

-- "Unread mail in my inbox": a folder's unread copies, instead of reading every copy in the folder.
create index mailbox_messages_unread on mailbox_messages (folder_id)
  where not ('\Seen' = any (flags));
