// Exports: the organisation's mailboxes with their credentials, its domains, and its message log as CSV.
// Each is read in keyset pages of MAILROOM_EXPORT_PAGE_SIZE rows and streamed as it is read, at most one
// page ahead of what the client has taken (the stream's back-pressure), so memory stays flat whatever
// the export's size. Each export leaves one audit entry when it ends, with the rows it carried and
// whether it completed: written before the last byte when it does, and on the way out when the client
// goes away or a query fails.
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Metrics } from '../../core/metrics.ts';
import type { AuditInput, AuditService } from '../audit/service.ts';
import type { DomainsService } from '../domains/service.ts';
import type { DomainRow } from '../domains/tables.ts';
import type { MailboxesService, MailboxRow, MailboxStatus } from '../mailboxes/service.ts';
import type { LogCursor, MessageFilter, MessageSummaryRow, MessagesService } from '../messages/service.ts';
import { type CsvColumn, csvHeader, csvRecord, UTF8_BOM } from './csv.ts';
import {
  carriesPasswords,
  type InboxPresetName,
  type InboxRow,
  type InboxServers,
  inboxColumns,
  inboxCsvColumns,
} from './presets.ts';

export { INBOX_COLUMNS, INBOX_PRESET_NAMES, type InboxPresetName } from './presets.ts';

export interface ExportsOptions {
  mailboxes: MailboxesService;
  domains: DomainsService;
  messages: MessagesService;
  audit: AuditService;
  log: Logger;
  metrics: Metrics;
  /** What exported mailboxes log in to (MAILROOM_EXPORT_SMTP_* and MAILROOM_EXPORT_IMAP_*). */
  servers: InboxServers;
  /** MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY: the daily limit of a mailbox without one of its own (0: none). */
  mailboxPerDay: number;
  /** Rows read per query. */
  pageSize: number;
}

/** A CSV file on its way: its name, and its bytes as they are read. */
export interface CsvExport {
  filename: string;
  stream: Readable;
}

export interface InboxExportRequest {
  preset: InboxPresetName;
  /** Comma-separated generic column names; absent: the preset's columns. */
  columns?: string;
  domainId?: string;
  /** Only mailboxes in this status (sending tools want the active ones); absent: all. */
  status?: MailboxStatus;
  /** Start with a UTF-8 byte order mark (for Excel). */
  bom: boolean;
}

/** A page's records as one chunk, and how many rows it holds. */
interface Batch {
  text: string;
  rows: number;
}

export class ExportsService {
  readonly #o: ExportsOptions;

  constructor(options: ExportsOptions) {
    this.#o = options;
  }

  /**
   * The organisation's mailboxes in address order (of one domain, with `domainId`), one row each with
   * its SMTP and IMAP settings. Passwords are there only for mailboxes created with export enabled.
   * `audit` is the entry to write when the export ends (its details added here).
   */
  async inboxes(organizationId: string, request: InboxExportRequest, audit: AuditInput): Promise<CsvExport> {
    const columns = inboxColumns(request.preset, request.columns);
    // Checked before the first byte: another organisation's domain is a 404, not an empty file.
    if (request.domainId) await this.#o.domains.get(organizationId, request.domainId);
    const csvColumns = inboxCsvColumns(request.preset, columns, this.#o.servers);
    const withPasswords = carriesPasswords(columns);
    const { mailboxes, pageSize } = this.#o;
    const filter = { domainId: request.domainId, status: request.status };
    const counted = { passwords: 0 };
    const inboxRow = (m: MailboxRow): InboxRow => this.#inboxRow(m, withPasswords);
    const read = async (after: string | null): Promise<Page<MailboxRow, string>> => {
      const rows = await mailboxes.page(organizationId, filter, after, pageSize);
      return { rows, next: rows.length === pageSize ? rows[rows.length - 1].address : null };
    };
    async function* batches(): AsyncGenerator<Batch> {
      for await (const page of pagesAhead(read)) {
        let text = '';
        for (const mailbox of page) {
          const row = inboxRow(mailbox);
          if (row.password !== null) counted.passwords++;
          text += csvRecord(csvColumns, row);
        }
        yield { text, rows: page.length };
      }
    }
    const details = () => ({
      preset: request.preset,
      columns,
      ...(request.domainId ? { domain_id: request.domainId } : {}),
      ...(request.status ? { status: request.status } : {}),
      passwords: counted.passwords,
    });
    return {
      filename: `inboxes-${request.preset}-${today()}.csv`,
      stream: this.#stream(csvHeader(csvColumns), batches(), request.bom, audit, details),
    };
  }

  /** The organisation's domains in name order: status and what verification found per DNS record. */
  domains(organizationId: string, options: { bom: boolean }, audit: AuditInput): CsvExport {
    const { domains, pageSize } = this.#o;
    const read = async (after: string | null): Promise<Page<DomainRow, string>> => {
      const rows = await domains.page(organizationId, after, pageSize);
      return { rows, next: rows.length === pageSize ? rows[rows.length - 1].name : null };
    };
    async function* batches(): AsyncGenerator<Batch> {
      for await (const page of pagesAhead(read))
        yield { text: records(DOMAIN_COLUMNS, page), rows: page.length };
    }
    return {
      filename: `domains-${today()}.csv`,
      stream: this.#stream(csvHeader(DOMAIN_COLUMNS), batches(), options.bom, audit, () => ({})),
    };
  }

  /**
   * The message log newest first, filtered as `GET /v1/messages` filters it. `filterQuery` is the filter
   * as it was asked for, kept in the audit entry.
   */
  async messages(
    organizationId: string,
    filter: MessageFilter,
    options: { bom: boolean; filterQuery: Record<string, unknown> },
    audit: AuditInput,
  ): Promise<CsvExport> {
    const { messages, pageSize } = this.#o;
    const read = (cursor: LogCursor | null): Promise<Page<MessageSummaryRow, LogCursor>> =>
      messages.pageBefore(organizationId, filter, cursor, pageSize);
    // The first page is read before the first byte, so a bad filter (an empty range) is a 422.
    const first = await read(null);
    async function* batches(): AsyncGenerator<Batch> {
      for await (const page of pagesAhead(read, first))
        yield { text: records(MESSAGE_COLUMNS, page), rows: page.length };
    }
    const filterQuery = Object.fromEntries(
      Object.entries(options.filterQuery).filter(([, v]) => v !== undefined),
    );
    return {
      filename: `messages-${today()}.csv`,
      stream: this.#stream(csvHeader(MESSAGE_COLUMNS), batches(), options.bom, audit, () => ({
        filter: filterQuery,
      })),
    };
  }

  #inboxRow(mailbox: MailboxRow, withPassword: boolean): InboxRow {
    const installation = this.#o.mailboxPerDay > 0 ? this.#o.mailboxPerDay : null;
    return {
      address: mailbox.address,
      firstName: mailbox.firstName,
      lastName: mailbox.lastName,
      displayName: mailbox.displayName,
      password: withPassword ? this.#o.mailboxes.exportedPassword(mailbox) : null,
      dailyLimit: mailbox.dailySendLimit ?? installation,
    };
  }

  /**
   * The header, then each batch as the client takes it (Readable.from asks for the next one only when
   * its buffer has room), with the audit entry written as the export ends however it ends.
   */
  #stream(
    header: string,
    batches: AsyncGenerator<Batch>,
    bom: boolean,
    audit: AuditInput,
    details: () => Record<string, unknown>,
  ): Readable {
    const record = (rows: number, outcome: Record<string, unknown>) =>
      this.#record({ ...audit, details: { ...details(), rows, ...outcome } });
    async function* chunks(): AsyncGenerator<string> {
      let rows = 0;
      let ended = false;
      try {
        yield bom ? UTF8_BOM + header : header;
        for await (const batch of batches) {
          rows += batch.rows;
          yield batch.text;
        }
        ended = true;
        await record(rows, { completed: true });
      } catch (error) {
        ended = true;
        await record(rows, { completed: false, failed: true });
        throw error;
      } finally {
        // Left early: the client went away (the stream was destroyed while this waited to yield; leaving
        // the loop also closes `batches`).
        if (!ended) await record(rows, { completed: false });
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  /** Never throws: the export has been sent (or cut short) either way. Counted and logged when it fails. */
  async #record(entry: AuditInput): Promise<void> {
    try {
      await this.#o.audit.record(entry);
    } catch (err) {
      this.#o.metrics.auditWriteFailures.inc();
      this.#o.log.error({ err, action: entry.action, details: entry.details }, 'could not write audit entry');
    }
  }
}

/** A keyset page: its rows, and where the next one starts (null: this was the last). */
interface Page<Row, Cursor> {
  rows: Row[];
  next: Cursor | null;
}

/**
 * The pages `read` gives, one read ahead: the next page's query runs while this one is formatted and
 * sent (the database works in its own thread or process meanwhile). At most two pages are held.
 */
async function* pagesAhead<Row, Cursor>(
  read: (cursor: Cursor | null) => Promise<Page<Row, Cursor>>,
  first?: Page<Row, Cursor>,
): AsyncGenerator<Row[]> {
  let pending: Promise<Page<Row, Cursor>> | null = first ? Promise.resolve(first) : read(null);
  try {
    while (pending) {
      const page: Page<Row, Cursor> = await pending;
      pending = page.next === null ? null : read(page.next);
      if (page.rows.length) yield page.rows;
    }
  } finally {
    // Left with a read in flight (the client went away): its outcome no longer matters, but a failure
    // must not go unhandled.
    pending?.catch(() => {});
  }
}

function records<Row>(columns: readonly CsvColumn<Row>[], rows: Row[]): string {
  let text = '';
  for (const row of rows) text += csvRecord(columns, row);
  return text;
}

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

const DOMAIN_COLUMNS: CsvColumn<DomainRow>[] = [
  { header: 'name', value: (d) => d.name },
  { header: 'unicode_name', value: (d) => d.unicodeName },
  { header: 'status', value: (d) => d.status },
  { header: 'is_active', value: (d) => d.isActive },
  { header: 'ownership_verified', value: (d) => d.ownershipVerified },
  { header: 'mx_verified', value: (d) => d.mxVerified },
  { header: 'spf_verified', value: (d) => d.spfVerified },
  { header: 'dkim_verified', value: (d) => d.dkimVerified },
  { header: 'dmarc_verified', value: (d) => d.dmarcVerified },
  { header: 'return_path_verified', value: (d) => d.returnPathVerified },
  { header: 'last_checked_at', value: (d) => d.lastCheckedAt },
  { header: 'verified_at', value: (d) => d.verifiedAt },
  { header: 'created_at', value: (d) => d.createdAt },
  { header: 'id', value: (d) => d.id },
];

// Addresses and subjects come from whoever sent the mail: every text cell here is neutralised.
const MESSAGE_COLUMNS: CsvColumn<MessageSummaryRow>[] = [
  { header: 'id', value: (m) => m.id },
  { header: 'received_at', value: (m) => m.receivedAt },
  { header: 'direction', value: (m) => m.direction },
  { header: 'status', value: (m) => m.status },
  { header: 'mail_from', value: (m) => m.mailFrom },
  { header: 'rcpt_to', value: (m) => m.rcptTo.join(', ') },
  { header: 'from_address', value: (m) => m.fromAddress },
  { header: 'from_name', value: (m) => m.fromName },
  { header: 'to_addresses', value: (m) => m.toAddresses.join(', ') },
  { header: 'cc_addresses', value: (m) => m.ccAddresses.join(', ') },
  { header: 'subject', value: (m) => m.subject },
  { header: 'size', value: (m) => m.size },
  { header: 'has_attachments', value: (m) => m.hasAttachments },
  { header: 'message_id_header', value: (m) => m.messageIdHeader },
  { header: 'thread_id', value: (m) => m.threadId },
  { header: 'domain_id', value: (m) => m.domainId },
  { header: 'tags', value: (m) => m.tags.join(', ') },
  { header: 'error', value: (m) => m.error },
];
