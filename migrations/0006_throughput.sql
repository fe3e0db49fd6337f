-- Throughput (issue 14): inbound processing's own queue, search vectors built in pieces, send counts that
-- can be given back, and installation-wide outbound limits.

-- Accepted messages waiting for processing. A narrow row of its own, so that claiming a batch does not
-- rewrite the wide message row and all its indexes: the message row is written once, when processed.
-- A claim pushes due_at past a lease; a worker that dies leaves rows that fall due again by themselves.
create table inbound_queue (
  message_id uuid primary key references messages(id) on delete cascade,
  organization_id uuid not null,
  queued_at timestamptz not null default now(),
  due_at timestamptz not null default now(),
  attempts integer not null default 0,
  last_error text
);
create index inbound_queue_due on inbound_queue (due_at);

insert into inbound_queue (message_id, organization_id, queued_at)
select id, organization_id, received_at from messages where direction = 'inbound' and processed_at is null;

-- Processing no longer runs as pg-boss jobs: stop the recovery schedule that re-queued lost jobs.
do $$
begin
  if to_regclass('pgboss.schedule') is not null then
    delete from pgboss.schedule where name = 'inbound.recover';
  end if;
end $$;

drop index messages_unprocessed;

-- Threading asks this index for every message ("who cites it?"). With GIN's fast update, new entries wait
-- in a pending list that every such lookup reads through; a message adds only a few entries, so they go
-- straight into the index instead.
alter index messages_references set (fastupdate = off);

-- Concatenates the pieces of a search vector in order (`||` shifts positions past the previous piece).
create aggregate mailroom_tsvector_agg(tsvector) (sfunc = tsvector_concat, stype = tsvector, initcond = '');

-- A recipient counted against the send limits remembers for whom and when, so that cancelling it gives
-- the count back to the right windows.
alter table deliveries add column counted_subject text;
alter table deliveries add column counted_at timestamptz;

-- Connections to a destination, for every worker of the installation: a worker holds one slot per open
-- connection (renewed while open); an expired lease belongs to a worker that died.
create table outbound_slots (
  destination text not null,
  slot integer not null,
  holder text,
  expires_at timestamptz,
  primary key (destination, slot)
);

-- Messages started towards a destination, for the installation-wide rate per minute: workers reserve
-- starts in small blocks; each reservation lives for the window plus the time its starts may be used.
create table outbound_rate (
  destination text not null,
  reserved_at timestamptz not null default now(),
  n integer not null
);
create index outbound_rate_destination on outbound_rate (destination, reserved_at);

-- Raw messages and body text are compressed with LZ4 where the server has it (PostgreSQL 14+ built with
-- lz4, as Debian's is): about twenty times faster than the default pglz for a little more space. The
-- embedded engine has no LZ4 and keeps pglz.
do $$
begin
  alter table blobs alter column data set compression lz4;
  alter table messages alter column body_text set compression lz4;
  alter table messages alter column details set compression lz4;
  alter table messages alter column search set compression lz4;
exception when feature_not_supported then
  null;
end $$;
