-- IMAP and POP3 (issue 16): the message store as IMAP sees it. A folder counts modifications
-- (CONDSTORE/QRESYNC MODSEQ) beside its UIDs; a message copy carries the modseq of its last change;
-- expunged UIDs are remembered with the modseq of their expunge (QRESYNC's VANISHED).

-- Mail sent through submission is copied into the sender's Sent folder unless this is false.
alter table mailboxes add column save_sent boolean not null default true;
-- The highest UIDVALIDITY a deleted folder of the mailbox had: a new folder's is above it, so a folder
-- deleted and made again under the same name never reuses one (RFC 3501 2.3.1.1).
alter table mailboxes add column last_uid_validity bigint not null default 0;

alter table mailbox_folders
  add column subscribed boolean not null default true,
  add column highest_modseq bigint not null default 1,
  -- UIDs above this are \Recent to the next session that selects the folder read-write
  add column recent_uid bigint not null default 0;

-- A message may be in several folders of a mailbox (IMAP COPY, APPEND of a sent copy); only the copy
-- that delivery filed is unique per mailbox, which keeps re-processing from filing a message twice.
alter table mailbox_messages drop constraint mailbox_messages_mailbox_id_message_id_key;
alter table mailbox_messages
  add column modseq bigint not null default 1,
  add column delivered boolean not null default true;
alter table mailbox_messages alter column delivered set default false;
create unique index mailbox_messages_delivered on mailbox_messages (mailbox_id, message_id) where delivered;
create index mailbox_messages_folder_modseq on mailbox_messages (folder_id, modseq);

create table mailbox_expunged (
  organization_id uuid not null,
  folder_id uuid not null references mailbox_folders(id) on delete cascade,
  uid bigint not null,
  modseq bigint not null,
  primary key (folder_id, uid)
);
create index mailbox_expunged_modseq on mailbox_expunged (folder_id, modseq);

-- 'stored': a message a client put in a folder (IMAP APPEND) rather than mail that flowed.
alter table messages drop constraint messages_direction_check;
alter table messages add constraint messages_direction_check
  check (direction in ('inbound', 'outbound', 'stored'));
-- The MIME structure IMAP answers from (src/modules/imap/mime), computed once, on first need.
alter table messages add column structure jsonb;
