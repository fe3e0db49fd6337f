// IMAP SEARCH as SQL over a folder's copies (`mm`) and their messages (`m`). Sequence numbers and
// \Recent belong to the session, so they arrive here resolved to UIDs. Header searches read the stored
// columns and header list; BODY and TEXT use the full-text index (words, not substrings: a message
// matches when it holds every word of the string, as the messages API's search does).
import type { SQL } from 'drizzle-orm';
import { sql } from '../../core/orm.ts';
import type { SearchKey } from './protocol/arguments.ts';
import { indexOf } from './responses.ts';

/** What only the session knows: its sequence numbers and the UIDs that are \Recent to it. */
export interface SearchContext {
  /** The session's UIDs, in sequence order. */
  uids: readonly number[];
  /** UIDs at or above this are \Recent to the session. */
  recentFrom: number;
  /** The UIDs of a sequence set (in sequence numbers or UIDs) against the session's view. */
  resolve(set: Extract<SearchKey, { op: 'seq' | 'uid' }>): number[];
}

/**
 * The resolved UIDs as ranges: UIDs next to each other in the session's view are one `between` (no UID
 * the session knows lies inside it), so `1:*` is one range however large the folder.
 */
function uidCondition(uids: readonly number[], view: readonly number[]): SQL {
  if (!uids.length) return sql`false`;
  const ranges: SQL[] = [];
  let start = uids[0];
  let at = indexOf(view, start);
  for (let i = 1; i <= uids.length; i++) {
    const next = i < uids.length ? indexOf(view, uids[i]) : -2;
    if (next === at + 1 && next >= 0) {
      at = next;
      continue;
    }
    ranges.push(sql`mm.uid between ${start} and ${view[at] ?? start}`);
    if (i < uids.length) {
      start = uids[i];
      at = next;
    }
  }
  return sql`(${sql.join(ranges, sql` or `)})`;
}
/** A LIKE pattern matching `value` anywhere, its wildcards taken literally. */
const containing = (value: string) => `%${value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** Headers kept as columns; any other is looked up in the stored header list. */
// Each is true or false, never NULL: under NOT, a NULL would drop the message from both sides.
const HEADER_COLUMNS: Record<string, (pattern: string) => SQL> = {
  subject: (p) => sql`coalesce(m.subject ilike ${p}, false)`,
  from: (p) => sql`coalesce(m.from_address ilike ${p} or m.from_name ilike ${p}, false)`,
  to: (p) => sql`array_to_string(m.to_addresses, ' ') ilike ${p}`,
  cc: (p) => sql`array_to_string(m.cc_addresses, ' ') ilike ${p}`,
};

export function searchCondition(key: SearchKey, context: SearchContext): SQL {
  switch (key.op) {
    case 'all':
      return sql`true`;
    case 'and':
      return key.keys.length
        ? sql.join(
            key.keys.map((k) => sql`(${searchCondition(k, context)})`),
            sql` and `,
          )
        : sql`true`;
    case 'or':
      return sql`((${searchCondition(key.left, context)}) or (${searchCondition(key.right, context)}))`;
    case 'not':
      return sql`not (${searchCondition(key.key, context)})`;
    case 'seq':
    case 'uid':
      return uidCondition(context.resolve(key), context.uids);
    case 'flag':
      return flagCondition(key.flag, key.present, context);
    case 'new':
      return sql`(mm.uid >= ${context.recentFrom} and not ('\\Seen' = any(mm.flags)))`;
    case 'old':
      return sql`mm.uid < ${context.recentFrom}`;
    case 'header':
      return headerCondition(key.field, key.value);
    case 'body':
      return textCondition(key.value);
    case 'text':
      return textCondition(key.value);
    case 'date': {
      const column = key.field === 'internal' ? sql`mm.created_at` : sql`m.sent_at`;
      // Dates compare without time or zone (RFC 3501), as days in UTC here.
      const day = sql`(${column} at time zone 'UTC')::date`;
      const op = key.cmp === 'before' ? sql`<` : key.cmp === 'on' ? sql`=` : sql`>=`;
      return sql`coalesce(${day} ${op} ${key.date}::date, false)`;
    }
    case 'size':
      // As numeric: a client's number may be beyond the columns' integer types.
      return key.cmp === 'larger'
        ? sql`mm.size > ${key.value}::numeric`
        : sql`mm.size < ${key.value}::numeric`;
    case 'modseq':
      return sql`mm.modseq >= ${key.value}::numeric`;
  }
}

function flagCondition(flag: string, present: boolean, context: SearchContext): SQL {
  if (flag === '\\Recent')
    return present ? sql`mm.uid >= ${context.recentFrom}` : sql`mm.uid < ${context.recentFrom}`;
  const has = sql`${flag} = any(mm.flags)`;
  return present ? has : sql`not (${has})`;
}

function headerCondition(field: string, value: string): SQL {
  const column = HEADER_COLUMNS[field];
  const pattern = containing(value);
  if (column) return value === '' ? sql`true` : column(pattern);
  // HEADER name "" matches every message that has the field (RFC 3501).
  return sql`exists (select 1 from jsonb_array_elements(coalesce(m.details->'headers', '[]'::jsonb)) h
                      where lower(h->>'name') = ${field} and h->>'value' ilike ${pattern})`;
}

function textCondition(value: string): SQL {
  if (!value.trim()) return sql`true`;
  // Not coalesce(): the match must stay a plain `@@` for the planner to use the full-text index.
  return sql`(m.search is not null and m.search @@ plainto_tsquery('simple', ${value}))`;
}
