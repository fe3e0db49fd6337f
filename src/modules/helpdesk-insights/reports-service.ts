// Helpdesk reports: what came in and how it was handled over a window of time, per organisation and
// optionally per desk. Times are wall-clock (not business hours). Counts by status, priority, assignee,
// team and category are of the tickets created in the window; the series counts tickets created and
// tickets done per day or ISO week (UTC); the backlog is what is open now.
import { Readable } from 'node:stream';
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { validationFailed } from '../../core/errors.ts';
import { type CsvColumn, csvHeader, csvRecord, UTF8_BOM } from '../exports/csv.ts';
import type { HelpdeskService } from '../helpdesk/service.ts';
import * as reports from './report-store.ts';

const DAY = 86_400_000;
/** The longest window a report covers, and the most buckets its series may have. */
export const MAX_WINDOW_DAYS = 731;
const MAX_BUCKETS = 400;

export interface ReportQuery {
  from?: Date;
  to?: Date;
  desk_id?: string;
  interval?: 'day' | 'week';
}

export interface ReportsOptions {
  db: Db;
  clock: Clock;
  helpdesk: HelpdeskService;
  exportPageSize: number;
}

export class ReportsService {
  readonly #o: ReportsOptions;

  constructor(options: ReportsOptions) {
    this.#o = options;
  }

  /** The window asked for: `to` defaults to now, `from` to 30 days before `to`. */
  async #window(organizationId: string, q: ReportQuery, unit: 'day' | 'week'): Promise<reports.Window> {
    const to = q.to ?? this.#o.clock.now();
    const from = q.from ?? new Date(to.getTime() - 30 * DAY);
    if (from >= to) throw validationFailed('from', 'must be before to');
    if (to.getTime() - from.getTime() > MAX_WINDOW_DAYS * DAY)
      throw validationFailed('to', `a report covers at most ${MAX_WINDOW_DAYS} days`);
    if (bucketStarts(from, to, unit).length > MAX_BUCKETS)
      throw validationFailed('interval', `at most ${MAX_BUCKETS} buckets: use interval=week for this window`);
    if (q.desk_id)
      await this.#o.helpdesk.desk(organizationId, q.desk_id).catch((err: { status?: number }) => {
        if (err.status === 404) throw validationFailed('desk_id', 'no such desk');
        throw err;
      });
    return { organizationId, deskId: q.desk_id, from, to };
  }

  async summary(organizationId: string, q: ReportQuery) {
    const unit = q.interval ?? 'day';
    const w = await this.#window(organizationId, q, unit);
    const now = this.#o.clock.now();
    const db = this.#o.db;
    const [status, priority, assignee, team, category, series, durations, dueDates, backlog, csat, sla] =
      await Promise.all([
        reports.breakdown(db, w, 'status'),
        reports.breakdown(db, w, 'priority'),
        reports.breakdown(db, w, 'assignee'),
        reports.breakdown(db, w, 'team'),
        reports.breakdown(db, w, 'category'),
        reports.series(db, w, unit),
        reports.durations(db, w),
        reports.dueDates(db, w, now),
        reports.backlog(db, w, now),
        reports.csat(db, w),
        reports.slaTargets(db, w),
      ]);
    const slaMet = sla.reduce((n, s) => n + s.met, 0);
    const slaJudged = slaMet + sla.reduce((n, s) => n + s.breached, 0);
    const counted = new Map(series.map((s) => [s.start, s]));
    const filled = bucketStarts(w.from, w.to, unit).map((start) => {
      const key = start.toISOString().slice(0, 10);
      const s = counted.get(key);
      return { start: key, created: s?.created ?? 0, resolved: s?.resolved ?? 0 };
    });
    const rated = csat.good + csat.bad;
    const judged = dueDates.met + dueDates.missed;
    return {
      from: w.from.toISOString(),
      to: w.to.toISOString(),
      desk_id: w.deskId ?? null,
      interval: unit,
      generated_at: now.toISOString(),
      created: status.reduce((n, r) => n + r.count, 0),
      resolved: durations.resolution.count,
      by_status: status.map((r) => ({ status: r.key!, count: r.count })),
      by_priority: priority.map((r) => ({ priority: r.key!, count: r.count })),
      by_assignee: assignee.map((r) => ({ assignee_id: r.key, email: r.label, count: r.count })),
      by_team: team.map((r) => ({ team_id: r.key, name: r.label, count: r.count })),
      by_category: category.map((r) => ({ category_id: r.key, name: r.label, count: r.count })),
      series: filled,
      first_response: seconds(durations.firstResponse),
      resolution: seconds(durations.resolution),
      due_dates: { ...dueDates, compliance: judged ? round(dueDates.met / judged) : null },
      sla: {
        compliance: slaJudged ? round(slaMet / slaJudged) : null,
        targets: sla.map((s) => ({
          ...s,
          compliance: s.met + s.breached ? round(s.met / (s.met + s.breached)) : null,
        })),
      },
      backlog,
      csat: {
        sent: csat.sent,
        responses: rated,
        good: csat.good,
        bad: csat.bad,
        score: rated ? round(csat.good / rated) : null,
        response_rate: csat.sent ? round(Math.min(1, rated / csat.sent)) : null,
      },
    };
  }

  /** The tickets created in the window as CSV, read a page at a time as the client takes it. */
  async ticketsCsv(organizationId: string, q: ReportQuery & { bom?: boolean }) {
    const w = await this.#window(organizationId, q, 'week');
    const db = this.#o.db;
    const pageSize = this.#o.exportPageSize;
    async function* chunks(): AsyncGenerator<string> {
      yield (q.bom ? UTF8_BOM : '') + csvHeader(TICKET_COLUMNS);
      let cursor: reports.ExportCursor | null = null;
      do {
        const page = await reports.exportPage(db, w, cursor, pageSize);
        let text = '';
        for (const row of page.rows) text += csvRecord(TICKET_COLUMNS, row);
        if (text) yield text;
        cursor = page.next;
      } while (cursor);
    }
    const day = (d: Date) => d.toISOString().slice(0, 10);
    return {
      filename: `tickets-${day(w.from)}-${day(new Date(w.to.getTime() - 1))}.csv`,
      stream: Readable.from(chunks(), { objectMode: false }),
    };
  }
}

const TICKET_COLUMNS: CsvColumn<reports.ExportRow>[] = [
  { header: 'number', value: (r) => r.number },
  { header: 'subject', value: (r) => r.subject },
  { header: 'status', value: (r) => r.status },
  { header: 'priority', value: (r) => r.priority },
  { header: 'desk', value: (r) => r.desk },
  { header: 'requester', value: (r) => r.requester },
  { header: 'assignee', value: (r) => r.assignee },
  { header: 'team', value: (r) => r.team },
  { header: 'category', value: (r) => r.category },
  { header: 'tags', value: (r) => r.tags.join(' ') },
  { header: 'source', value: (r) => r.source },
  { header: 'created_at', value: (r) => r.created_at },
  { header: 'first_response_at', value: (r) => r.first_response_at },
  { header: 'resolved_at', value: (r) => r.resolved_at },
  { header: 'closed_at', value: (r) => r.closed_at },
  { header: 'due_at', value: (r) => r.due_at },
  { header: 'first_response_seconds', value: (r) => r.first_response_seconds },
  { header: 'resolution_seconds', value: (r) => r.resolution_seconds },
  { header: 'csat', value: (r) => r.csat },
  { header: 'id', value: (r) => r.id },
];

function seconds(d: reports.Durations) {
  return { count: d.count, p50_seconds: d.p50, p90_seconds: d.p90, average_seconds: d.average };
}

const round = (n: number) => Math.round(n * 10_000) / 10_000;

/** The UTC day (or Monday of the ISO week) starting each bucket that overlaps [from, to). */
export function bucketStarts(from: Date, to: Date, unit: 'day' | 'week'): Date[] {
  const start = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate()));
  if (unit === 'week') start.setUTCDate(start.getUTCDate() - ((start.getUTCDay() + 6) % 7));
  const step = unit === 'week' ? 7 : 1;
  const out: Date[] = [];
  for (let at = start; at < to && out.length <= MAX_BUCKETS; at = new Date(at.getTime() + step * DAY))
    out.push(at);
  return out;
}
