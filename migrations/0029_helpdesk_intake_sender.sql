-- Loop protection counted a sender's mail within the hour by joining every mail the desk filed in that
-- hour to its message (quadratic under a burst: 55 ms a batch at 2,000 mails). The sender is kept on the
-- intake row instead, and counted through an index.
alter table helpdesk_intake add column sender text;
update helpdesk_intake i set sender = lower(m.from_address)
  from messages m
 where m.id = i.message_id and i.status = 'filed' and i.processed_at > now() - interval '1 hour';
drop index helpdesk_intake_filed;
create index helpdesk_intake_sender on helpdesk_intake (organization_id, desk_id, sender, processed_at)
  where status = 'filed';
