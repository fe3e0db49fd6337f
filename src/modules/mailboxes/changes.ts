// Folder changes are announced at commit on one NOTIFY channel, so every process's IMAP sessions (and
// IDLE) learn of mail filed, flagged, moved or expunged by any other process: delivery, the API, IMAP.
import type { SQL } from 'drizzle-orm';
import { sql } from '../../core/orm.ts';

export const FOLDER_CHANNEL = 'mailroom_folders';
/** Folder ids per notification: 100 ids and commas stay far below NOTIFY's 8000-byte payload limit. */
const IDS_PER_NOTIFICATION = 100;

/** A statement announcing the folders whose ids `folderIds` (a query with an `id` column) selects. */
export function notifyFolders(folderIds: SQL): SQL {
  return sql`select pg_notify(${FOLDER_CHANNEL}, string_agg(ids.id::text, ',')) from (
      select id, (row_number() over () - 1) / ${IDS_PER_NOTIFICATION} as chunk from (${folderIds}) selected
    ) ids group by ids.chunk`;
}

/** The folder ids of a notification's payload. */
export function notifiedFolders(payload: string): string[] {
  return payload.split(',').filter(Boolean);
}
