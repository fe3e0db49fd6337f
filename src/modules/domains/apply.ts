// DNS automation: publishes a domain's records through its DNS provider, idempotently. Records
// Mailroom creates carry a marker in the provider's comment; only those are ever updated or
// deleted. A record of the same kind that is not ours (an existing SPF, DMARC or CNAME) is left
// alone and reported, with what to change by hand. Running it twice changes nothing.
import type { DnsProvider, DnsRecordSpec, DnsZone, ProviderRecord } from '../../providers/dns/types.ts';
import { ProviderError } from '../../providers/errors.ts';
import { type RecordPurpose, type RequiredRecord, TXT_KIND } from './records.ts';
import { withTerm } from './spf.ts';

export type ApplyAction = 'created' | 'updated' | 'unchanged' | 'deleted' | 'skipped' | 'error';

export interface ApplyResult {
  purpose: RecordPurpose;
  type: RequiredRecord['type'];
  host: string;
  action: ApplyAction;
  detail: string;
}

/** TXT records that are "the same kind" as ours at a host, so we never add a second one. */
const SAME_KIND: Partial<Record<RecordPurpose, (content: string) => boolean>> = {
  ...TXT_KIND,
  dkim: () => true, // a selector's host holds nothing but its key
};

export const markerFor = (domainId: string, r: { purpose: string; selector: string | null }) =>
  `mailroom:${domainId}:${r.purpose}${r.selector ? `:${r.selector}` : ''}`;

function specOf(r: RequiredRecord): DnsRecordSpec {
  return {
    type: r.type,
    name: r.host,
    content: r.value,
    ttl: r.ttl,
    ...(r.priority !== null ? { priority: r.priority } : {}),
  };
}

const sameRecord = (a: DnsRecordSpec, b: DnsRecordSpec) =>
  a.content.toLowerCase() === b.content.toLowerCase() &&
  a.ttl === b.ttl &&
  (a.priority ?? null) === (b.priority ?? null);

/**
 * One write made while publishing, with what undoes it: a record created (delete it), updated (put the
 * previous content back) or deleted (create it again). Plain data, so it can be kept and undone later.
 */
export type DnsChange =
  | { op: 'created'; id: string; record: DnsRecordSpec; comment: string }
  | { op: 'updated'; id: string; record: DnsRecordSpec; previous: DnsRecordSpec; comment: string }
  | { op: 'deleted'; record: DnsRecordSpec; comment: string };

export interface ApplyOptions {
  domainId: string;
  domain: string;
  records: RequiredRecord[];
  /** DKIM selectors retired since they were published: their records (ours only) are removed. */
  retiredSelectors: string[];
  spfTerm: string;
  /** Each write is added here, in order (to undo the run later). */
  journal?: DnsChange[];
}

export async function applyRecords(
  provider: DnsProvider,
  o: ApplyOptions,
): Promise<{ zone: DnsZone; results: ApplyResult[] }> {
  const zone = await provider.findZone(o.domain);
  const results: ApplyResult[] = [];
  for (const record of o.records) {
    results.push(await perRecord(record, () => publishOne(provider, zone, record, o)));
  }
  for (const selector of o.retiredSelectors) {
    const host = `${selector}._domainkey.${o.domain}`;
    const marker = markerFor(o.domainId, { purpose: 'dkim', selector });
    const retired = { purpose: 'dkim', type: 'TXT', host } as const;
    results.push(
      await perRecord(retired as RequiredRecord, async () => {
        const ours = (await provider.listRecords(zone, host, 'TXT')).filter((r) => r.comment === marker);
        for (const r of ours) {
          await provider.deleteRecord(zone, r.id);
          o.journal?.push({ op: 'deleted', record: specOfProvider(r), comment: marker });
        }
        return ours.length
          ? { action: 'deleted', detail: `retired DKIM key ${selector} removed` }
          : { action: 'unchanged', detail: `retired DKIM key ${selector} is not published` };
      }),
    );
  }
  return { zone, results };
}

/** A record the provider refuses is reported and the rest go on; account-wide failures stop the run. */
async function perRecord(
  r: Pick<RequiredRecord, 'purpose' | 'type' | 'host'>,
  publish: () => Promise<{ action: ApplyAction; detail: string }>,
): Promise<ApplyResult> {
  const head = { purpose: r.purpose, type: r.type, host: r.host };
  try {
    return { ...head, ...(await publish()) };
  } catch (error) {
    if (error instanceof ProviderError && error.code === 'provider_rejected') {
      return { ...head, action: 'error', detail: error.message };
    }
    throw error;
  }
}

async function publishOne(
  provider: DnsProvider,
  zone: DnsZone,
  r: RequiredRecord,
  o: ApplyOptions,
): Promise<{ action: ApplyAction; detail: string }> {
  const spec = specOf(r);
  const marker = markerFor(o.domainId, r);
  const existing = await provider.listRecords(zone, r.host, r.type);
  const ours = existing.find((e) => e.comment === marker);
  if (ours) {
    if (sameRecord(ours, spec)) return { action: 'unchanged', detail: 'already published' };
    await provider.updateRecord(zone, ours.id, spec, marker);
    o.journal?.push({
      op: 'updated',
      id: ours.id,
      record: spec,
      previous: specOfProvider(ours),
      comment: marker,
    });
    return { action: 'updated', detail: `was ${describe(ours)}` };
  }
  const theirs = conflicting(r, existing, o);
  if (theirs) return theirs;
  const created = await provider.createRecord(zone, spec, marker);
  o.journal?.push({ op: 'created', id: created.id, record: spec, comment: marker });
  return { action: 'created', detail: 'published' };
}

/**
 * Undoes a run's writes, last first: created records are deleted, updated ones get their previous
 * content back, deleted ones are created again. Records changed since (ours no longer there, or no
 * longer as the run left them) are left alone and counted as skipped.
 */
export async function revertChanges(
  provider: DnsProvider,
  domain: string,
  changes: DnsChange[],
): Promise<{ reverted: number; skipped: number }> {
  const zone = await provider.findZone(domain);
  let reverted = 0;
  let skipped = 0;
  for (const change of [...changes].reverse()) {
    const current = await provider.listRecords(zone, change.record.name, change.record.type);
    const ours = current.filter((r) => r.comment === change.comment);
    if (change.op === 'deleted') {
      if (ours.length) skipped++;
      else {
        await provider.createRecord(zone, change.record, change.comment);
        reverted++;
      }
      continue;
    }
    const written = ours.find((r) => r.id === change.id && sameRecord(r, change.record));
    if (!written) {
      skipped++;
      continue;
    }
    if (change.op === 'created') await provider.deleteRecord(zone, written.id);
    else await provider.updateRecord(zone, written.id, change.previous, change.comment);
    reverted++;
  }
  return { reverted, skipped };
}

function specOfProvider(r: ProviderRecord): DnsRecordSpec {
  return {
    type: r.type,
    name: r.name,
    content: r.content,
    ttl: r.ttl,
    ...(r.priority !== undefined && r.priority !== null ? { priority: r.priority } : {}),
  };
}

/** What a record that is not ours means for ours: already satisfied, in the way, or no matter. */
function conflicting(
  r: RequiredRecord,
  existing: ProviderRecord[],
  o: ApplyOptions,
): { action: ApplyAction; detail: string } | null {
  if (r.type === 'MX') {
    const same = existing.find((e) => e.content.toLowerCase() === r.value);
    return same
      ? { action: 'unchanged', detail: `an MX to ${r.value} already exists (not managed by Mailroom)` }
      : null;
  }
  if (r.type === 'CNAME') {
    const other = existing[0];
    if (!other) return null;
    return other.content.toLowerCase() === r.value
      ? { action: 'unchanged', detail: `a CNAME to ${r.value} already exists (not managed by Mailroom)` }
      : {
          action: 'skipped',
          detail: `${r.host} already has a CNAME to ${other.content}, not managed by Mailroom; change it by hand`,
        };
  }
  const sameKind = SAME_KIND[r.purpose];
  const other = sameKind && existing.find((e) => sameKind(e.content));
  if (!other) return null;
  if (r.purpose === 'spf') {
    if (
      new RegExp(`(^|\\s)\\+?${o.spfTerm.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\s|$)`, 'i').test(
        other.content,
      )
    ) {
      return { action: 'unchanged', detail: 'the existing SPF record already authorises Mailroom' };
    }
    return {
      action: 'skipped',
      detail: `an SPF record not managed by Mailroom exists; a domain may have only one, so merge by hand: ${withTerm(other.content, o.spfTerm)}`,
    };
  }
  if (r.purpose === 'dmarc') return { action: 'unchanged', detail: 'an existing DMARC record is kept' };
  return {
    action: 'skipped',
    detail: `${r.host} already has a record not managed by Mailroom: ${other.content}`,
  };
}

function describe(r: DnsRecordSpec): string {
  return `${r.type} ${r.priority !== undefined ? `${r.priority} ` : ''}${r.content} (ttl ${r.ttl})`;
}
