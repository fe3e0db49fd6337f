// One-click unsubscribe on bulk mail (RFC 8058; Gmail and Yahoo require it of bulk senders since 2024).
// Which mail is bulk mail:
//   - a message that says so in its header: Precedence: bulk or list, a List-Id, or a List-Unsubscribe
//     (recorded per message when it is queued: delivery/list-headers.ts);
//   - every message of a sender on a day it sent to more than the bulk-sender threshold of recipients
//     (MAILROOM_HEALTH_BULK_DAILY, 5,000: Gmail's bulk-sender rule), counted per domain for a domain and
//     per From address for a mailbox.
// Sending through the batch API says nothing by itself: warmup, campaigns and transactional integrations
// all use it. One-click means a List-Unsubscribe with an https URI and List-Unsubscribe-Post:
// List-Unsubscribe=One-Click, both covered by the DKIM signature (ours covers them).
import type { Db } from '../../../core/db.ts';
import * as store from '../store.ts';
import type { Finding, HealthInput, SubjectKind } from './types.ts';

export interface UnsubscribeOptions {
  db: Db;
  windowMs: number;
  /** Recipients a day from which a sender is a bulk sender. */
  bulkDaily: number;
}

interface Day {
  day: string;
  messages: number;
  recipients: number;
  bulk: number;
  bulkMissing: number;
  missing: number;
}

const FIX =
  "Give list and marketing mail `List-Unsubscribe: <https://…>` (a mailto: may follow) and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (pass both in the send API's `headers`), and honour the POST within two days";

/** The findings of one sender from its days in the window. */
export function unsubscribeFindings(days: Day[], o: { windowMs: number; bulkDaily: number }): Finding[] {
  const findings: Finding[] = [];
  const windowDays = Math.round(o.windowMs / 86_400_000);
  const busy = days.filter((d) => d.recipients > o.bulkDaily);
  const quiet = days.filter((d) => d.recipients <= o.bulkDaily);
  // Days under the threshold: only mail that declares itself list mail.
  const bulk = quiet.reduce((n, d) => n + d.bulk, 0);
  const bulkMissing = quiet.reduce((n, d) => n + d.bulkMissing, 0);
  if (bulkMissing > 0) {
    const share = bulkMissing / bulk;
    findings.push({
      code: 'unsubscribe.missing_one_click',
      severity: 'warning',
      title: `${bulkMissing} of ${bulk} list messages had no one-click unsubscribe`,
      evidence: {
        bulk_messages: bulk,
        without_one_click: bulkMissing,
        share: Math.round(share * 1000) / 1000,
        window_days: windowDays,
      },
      fix: FIX,
      penalty: Math.round(5 + 10 * share),
    });
  }
  // Days over it: the sender is a bulk sender, and all of that day's mail counts.
  if (busy.length) {
    const messages = busy.reduce((n, d) => n + d.messages, 0);
    const missing = busy.reduce((n, d) => n + d.missing, 0);
    if (missing > 0) {
      const share = missing / messages;
      findings.push({
        code: 'unsubscribe.bulk_sender_without_one_click',
        severity: share > 0.5 ? 'critical' : 'warning',
        title: `Sent to more than ${o.bulkDaily.toLocaleString('en')} recipients a day (a bulk sender) and ${missing} of ${messages} of those days' messages had no one-click unsubscribe`,
        evidence: {
          days: busy.map((d) => ({
            day: d.day,
            recipients: d.recipients,
            messages: d.messages,
            without_one_click: d.missing,
          })),
          threshold: o.bulkDaily,
          messages,
          without_one_click: missing,
          share: Math.round(share * 1000) / 1000,
          window_days: windowDays,
        },
        fix: `${FIX}. Transactional mail (receipts, password resets) is exempt; send it from another address or domain so it is not counted with the bulk mail`,
        penalty: Math.round(10 + 10 * share),
      });
    }
  }
  return findings;
}

export function unsubscribeInput(o: UnsubscribeOptions): HealthInput {
  return {
    name: 'unsubscribe',
    title: 'One-click unsubscribe on bulk mail',
    kinds: ['domain', 'mailbox'],
    weight: 20,
    async evaluate(batch) {
      const rows = await batch.memo(`list-mail:${batch.organizationId}`, () =>
        store.listMailCounts(o.db, batch.organizationId, new Date(batch.now.getTime() - o.windowMs)),
      );
      // Each sender's days (a domain's mail summed over its addresses), once per run and kind.
      const senders = await batch.memo(`list-mail:${batch.organizationId}:${batch.kind}`, async () =>
        daysBySender(rows, batch.kind),
      );
      const findings = new Map<string, Finding[]>();
      for (const s of batch.subjects) {
        const days = senders.get(batch.kind === 'domain' ? s.id : s.name);
        if (!days) continue;
        const found = unsubscribeFindings(
          [...days.values()].sort((a, b) => a.day.localeCompare(b.day)),
          o,
        );
        if (found.length) findings.set(s.id, found);
      }
      return findings;
    },
  };
}

function daysBySender(
  rows: Awaited<ReturnType<typeof store.listMailCounts>>,
  kind: SubjectKind,
): Map<string, Map<string, Day>> {
  const senders = new Map<string, Map<string, Day>>();
  for (const r of rows) {
    const key = kind === 'domain' ? r.domainId : r.address;
    if (!key) continue;
    const days = senders.get(key) ?? new Map<string, Day>();
    const day = days.get(r.day) ?? {
      day: r.day,
      messages: 0,
      recipients: 0,
      bulk: 0,
      bulkMissing: 0,
      missing: 0,
    };
    day.messages += r.messages;
    day.recipients += r.recipients;
    day.bulk += r.bulk;
    day.bulkMissing += r.bulkMissing;
    day.missing += r.missing;
    days.set(r.day, day);
    senders.set(key, days);
  }
  return senders;
}
