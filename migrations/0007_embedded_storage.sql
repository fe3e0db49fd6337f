-- Where the server has no LZ4 (the embedded engine), raw messages and body text were compressed with
-- pglz, which costs about 0.3 ms for each 20 KB message on the embedded engine's thread: a quarter of
-- filing it. They are stored as they are there instead, as a maildir stores mail; PostgreSQL with LZ4
-- keeps compressing (migration 0006). Rows already stored keep their compression.
do $$
begin
  if (select attcompression from pg_attribute where attrelid = 'blobs'::regclass and attname = 'data') <> 'l' then
    alter table blobs alter column data set storage external;
    alter table messages alter column body_text set storage external;
  end if;
end $$;
