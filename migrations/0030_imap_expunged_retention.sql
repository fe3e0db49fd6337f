-- Expunged UIDs were kept forever for QRESYNC. They are now kept for MAILROOM_IMAP_EXPUNGED_RETENTION;
-- a folder remembers the highest modseq pruned, and a client resynchronising from an older modseq is
-- told every UID below UIDNEXT that the folder no longer holds (RFC 7162 allows UIDs it never saw).
alter table mailbox_expunged add column expunged_at timestamptz not null default now();
create index mailbox_expunged_at on mailbox_expunged (expunged_at);
alter table mailbox_folders add column expunged_floor bigint not null default 0;
