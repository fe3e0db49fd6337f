// Threads of newly recorded messages: a message joins the thread of the first known message it replies to
// or cites, else of a known message that replies to or cites it (a reply that arrived first), else starts
// its own. Messages earlier in the same batch count as known. Processing, and the sync of external
// accounts, thread this way.
import type { Db } from '../../core/db.ts';
import type { PreparedMessage } from './parse.ts';
import { threadsOf } from './store.ts';

export interface Threadable {
  id: string;
  organizationId: string;
  parsed: PreparedMessage['parsed'];
}

const parentsOf = (p: PreparedMessage['parsed']) => [
  ...new Set([p.inReplyTo, ...p.references].filter((id): id is string => !!id)),
];

/** The thread of each message, in order, from one lookup for the whole batch. */
export async function threadBatch(db: Db, batch: Threadable[]): Promise<string[]> {
  const answers = await threadsOf(
    db,
    batch.map((m) => ({
      organizationId: m.organizationId,
      messageIdHeader: m.parsed.messageId,
      parents: parentsOf(m.parsed),
    })),
  );
  const threadOfHeader = new Map<string, string>();
  const threadOfCited = new Map<string, string>();
  return batch.map((m, i) => {
    const { parsed, organizationId: org } = m;
    const parents = parentsOf(parsed);
    const inBatch = parents.map((p) => threadOfHeader.get(`${org}:${p}`)).find(Boolean);
    const cited = parsed.messageId ? threadOfCited.get(`${org}:${parsed.messageId}`) : undefined;
    const thread = answers[i].byParent ?? inBatch ?? answers[i].byReply ?? cited ?? m.id;
    if (parsed.messageId) threadOfHeader.set(`${org}:${parsed.messageId}`, thread);
    for (const p of parents) threadOfCited.set(`${org}:${p}`, thread);
    return thread;
  });
}
