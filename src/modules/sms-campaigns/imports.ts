// Contact imports from CSV, as tracked jobs (GET /v1/jobs/:id: progress, per-row errors, cancel). The
// upload is read whole (it is hashed, and a worker in any process must find it after a restart), kept as
// a blob, and parsed again by the job as a stream: rows are written a chunk per transaction, together
// with the job's progress, so a resumed job skips exactly the rows already written.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';
import type { BlobStore } from '../../core/blobs.ts';
import type { Db } from '../../core/db.ts';
import { AppError, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { ItemError, JobRow, RunningJob, TrackedJobsService } from '../jobs/service.ts';
import { isRegion, normalizeNumber } from '../sms/numbers.ts';
import { normalTags } from './service.ts';
import * as store from './store.ts';
import type { ColumnMapping, ImportOptions, ImportRow, OnDuplicate } from './tables.ts';

export const IMPORT_KIND = 'sms.contacts.import';
/** Rows per transaction: one statement writes them all. */
const CHUNK = 5_000;
/** Names a header may have for the phone number when no mapping is given (compared in lower case). */
const PHONE_HEADERS = ['phone', 'phone number', 'mobile', 'mobile number', 'cell', 'number', 'msisdn', 'tel'];
const NAME_HEADERS = ['name', 'full name', 'fullname', 'contact name'];
const TAG_HEADERS = ['tags', 'tag'];
const FIELD_KEY = /^[a-z][a-z0-9_]{0,63}$/;

export interface ImportRequest {
  mapping?: ColumnMapping | null;
  on_duplicate?: OnDuplicate;
  list_id?: string | null;
  default_region?: string | null;
  tags?: string[];
  delimiter?: string;
  filename?: string | null;
}

export interface ContactImportsOptions {
  db: Db;
  blobs: BlobStore;
  jobs: TrackedJobsService;
  /** The largest file taken, in bytes. */
  maxBytes: number;
  /** Checks the list exists (inside `tx`); 404 when not. */
  checkList: (tx: Db, organizationId: string, listId: string) => Promise<unknown>;
  /** The organisation's region for numbers written without a country code. */
  defaultRegion: (organizationId: string) => Promise<string>;
  /** Tells this process's job worker (if it runs one) that a job waits: it starts now, not at its next poll. */
  wake: () => void;
}

export interface ImportView {
  row: ImportRow;
  job: JobRow;
}

/** A field key from a header: lower case, words joined by `_`. */
export function fieldKey(header: string): string {
  const key = header
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return /^[a-z]/.test(key) ? key.slice(0, 64) : `field_${key}`.slice(0, 64);
}

/** The mapping the header suggests: known names for phone, name and tags; every other column a field. */
export function guessMapping(header: string[]): ColumnMapping | null {
  const find = (names: string[]) => header.find((h) => names.includes(h.trim().toLowerCase())) ?? null;
  const phone = find(PHONE_HEADERS);
  if (!phone) return null;
  const name = find(NAME_HEADERS);
  const tags = find(TAG_HEADERS);
  const fields: Record<string, string> = {};
  for (const h of header) if (h !== phone && h !== name && h !== tags && h.trim()) fields[fieldKey(h)] ??= h;
  return { phone, name, tags, fields };
}

/** Data records in a CSV file: non-empty lines outside quoted fields, less the header. */
export function countRecords(data: Buffer): number {
  let records = 0;
  let quoted = false;
  let content = false;
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    if (b === 0x22) {
      quoted = !quoted;
      content = true;
    } else if (b === 0x0a && !quoted) {
      if (content) records++;
      content = false;
    } else if (b !== 0x0d && b !== 0x20 && b !== 0x09) content = true;
  }
  if (content) records++;
  return Math.max(0, records - 1);
}

const csvOptions = (delimiter: string) => ({
  bom: true,
  delimiter,
  skip_empty_lines: true,
  relax_column_count: true,
  relax_quotes: true,
  max_record_size: 65_536,
});

export class ContactImportsService {
  readonly #o: ContactImportsOptions;

  constructor(options: ContactImportsOptions) {
    this.#o = options;
    options.jobs.register<{ import_id: string }>(IMPORT_KIND, { run: (job) => this.#run(job) });
  }

  /**
   * Takes the file (checked, hashed and kept) and starts its job. 409 when the same file was imported
   * already (and that import did not fail or get cancelled); 422 for a mapping the header does not fit.
   */
  async start(
    organizationId: string,
    body: AsyncIterable<Buffer | string>,
    request: ImportRequest,
    options: { createdBy: string | null; idempotencyKey?: string },
  ): Promise<{ row: ImportRow; job: JobRow; replayed: boolean }> {
    const data = await this.#read(body);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const { idempotency, earlier } = await this.#o.jobs.idempotencyOf(
      organizationId,
      IMPORT_KIND,
      options.idempotencyKey,
      { ...request, sha256 },
    );
    if (earlier) {
      const row = await store.importByJob(this.#o.db, earlier.id);
      if (row) return { row, job: earlier, replayed: true };
    }
    const importOptions = this.#options(data, request);
    importOptions.defaultRegion ??= await this.#o.defaultRegion(organizationId);
    const id = newId();
    const blobId = newId();
    const total = countRecords(data);
    const started = await this.#o.db.transaction(async (tx) => {
      if (importOptions.listId) await this.#o.checkList(tx, organizationId, importOptions.listId);
      const standing = await store.standingImportOf(tx, organizationId, sha256);
      if (standing)
        throw new AppError(
          409,
          'duplicate_import',
          `This file was imported already (import ${standing.id}${standing.filename ? `, ${standing.filename}` : ''}, ${standing.createdAt.toISOString()})`,
          { extensions: { import_id: standing.id, job_id: standing.jobId } },
        );
      await this.#o.blobs.put(tx, [{ organizationId, id: blobId, data }]);
      const { job } = await this.#o.jobs.create(
        organizationId,
        {
          kind: IMPORT_KIND,
          input: { import_id: id },
          total,
          createdBy: options.createdBy,
          idempotency,
        },
        tx,
      );
      const row = await store.insertImport(tx, {
        id,
        organizationId,
        jobId: job.id,
        blobId,
        filename: request.filename ?? null,
        size: data.length,
        sha256,
        options: importOptions,
        createdBy: options.createdBy,
      });
      return { row, job, replayed: false };
    });
    this.#o.wake();
    return started;
  }

  async get(organizationId: string, id: string): Promise<ImportView> {
    const row = await store.importById(this.#o.db, organizationId, id);
    if (!row) throw new AppError(404, 'not_found', 'Import not found');
    return { row, job: await this.#o.jobs.get(organizationId, row.jobId) };
  }

  async list(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listImports(this.#o.db, organizationId, page);
    const items = await Promise.all(
      rows.map(async (row) => ({ row, job: await this.#o.jobs.get(organizationId, row.jobId) })),
    );
    return toPage(items, total, page);
  }

  async #read(body: AsyncIterable<Buffer | string>): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buffer.length;
      if (size > this.#o.maxBytes)
        throw new AppError(413, 'payload_too_large', `The file is larger than ${this.#o.maxBytes} bytes`);
      chunks.push(buffer);
    }
    if (size === 0) throw validationFailed('file', 'the file is empty');
    return Buffer.concat(chunks, size);
  }

  /** The options as stored, with the mapping checked against the file's header. */
  #options(data: Buffer, request: ImportRequest): ImportOptions {
    const delimiter = request.delimiter ?? ',';
    let header: string[];
    try {
      [header = []] = parseSync(data.subarray(0, Math.min(data.length, 1_048_576)), {
        ...csvOptions(delimiter),
        to: 1,
      }) as string[][];
    } catch (err) {
      throw validationFailed('file', `not a CSV file: ${(err as Error).message}`);
    }
    if (!header.length) throw validationFailed('file', 'the file has no header row');
    const mapping = request.mapping ?? guessMapping(header);
    if (!mapping)
      throw validationFailed(
        'mapping',
        `no column looks like a phone number (${PHONE_HEADERS.join(', ')}); give a mapping`,
      );
    const columns: [string, string][] = [
      ['mapping.phone', mapping.phone],
      ...(mapping.name ? [['mapping.name', mapping.name] as [string, string]] : []),
      ...(mapping.tags ? [['mapping.tags', mapping.tags] as [string, string]] : []),
      ...Object.entries(mapping.fields ?? {}).map(([k, v]): [string, string] => [`mapping.fields.${k}`, v]),
    ];
    for (const [field, column] of columns)
      if (!header.includes(column))
        throw validationFailed(field, `the file has no column "${column}" (it has: ${header.join(', ')})`);
    for (const key of Object.keys(mapping.fields ?? {}))
      if (!FIELD_KEY.test(key))
        throw validationFailed(`mapping.fields.${key}`, 'field keys are a-z, 0-9 and _');
    if (request.default_region && !isRegion(request.default_region))
      throw validationFailed('default_region', `${request.default_region} is not a region`);
    return {
      mapping,
      onDuplicate: request.on_duplicate ?? 'update',
      listId: request.list_id ?? null,
      defaultRegion: request.default_region ?? null,
      tags: normalTags(request.tags ?? []),
      delimiter,
    };
  }

  // ---- the job -----------------------------------------------------------------------------------------

  async #run(job: RunningJob<{ import_id: string }>): Promise<Record<string, unknown>> {
    const row = await store.importById(this.#o.db, job.organizationId, job.input.import_id);
    if (!row) throw new Error('the import is gone');
    const data = await this.#o.blobs.get(job.organizationId, row.blobId);
    if (!data) throw new Error('the imported file is gone');
    const o = row.options;
    const parser = Readable.from([data]).pipe(parse(csvOptions(o.delimiter)));
    let header: string[] | null = null;
    let index: ReturnType<typeof columnIndexes> | null = null;
    let n = 0;
    let chunk = new Chunk(o.onDuplicate);
    // One chunk is written while the next is parsed: writes stay in file order, one at a time.
    let writing: Promise<void> = Promise.resolve();
    const write = async (ready: Chunk) => {
      await writing;
      if (job.cancelRequested()) return;
      writing = this.#write(job, row, ready);
      // Its failure surfaces at the next await of `writing`, not as an unhandled rejection meanwhile.
      writing.catch(() => {});
    };
    for await (const record of parser as AsyncIterable<string[]>) {
      if (!header || !index) {
        header = record;
        index = columnIndexes(header, o.mapping);
        continue;
      }
      n++;
      if (n <= job.done) continue;
      chunk.add(n + 1, record, header.length, index, o);
      if (chunk.size >= CHUNK) {
        await write(chunk);
        if (job.cancelRequested()) break;
        chunk = new Chunk(o.onDuplicate);
      }
    }
    if (chunk.size && !job.cancelRequested()) await write(chunk);
    await writing;
    const done = (await store.importById(this.#o.db, job.organizationId, row.id))!;
    return {
      import_id: row.id,
      rows: done.rows,
      created: done.created,
      updated: done.updated,
      skipped: done.skipped,
      failed: done.failed,
      links: { import: `/v1/sms/contacts/imports/${row.id}`, contacts: '/v1/sms/contacts' },
    };
  }

  async #write(job: RunningJob<{ import_id: string }>, row: ImportRow, chunk: Chunk): Promise<void> {
    const contacts = [...chunk.contacts.values()];
    await this.#o.db.transaction(async (tx) => {
      const written = await store.writeImportChunk(
        tx,
        row.organizationId,
        contacts,
        row.options.onDuplicate,
        row.options.listId,
      );
      const skipped =
        chunk.skipped + (row.options.onDuplicate === 'skip' ? contacts.length - written.created : 0);
      await store.addImportCounts(tx, row.id, {
        rows: chunk.size,
        created: written.created,
        updated: written.updated + chunk.merged,
        skipped,
        failed: chunk.errors.length,
      });
      await job.progress(tx, chunk.size, chunk.errors);
    });
  }
}

function columnIndexes(header: string[], mapping: ColumnMapping) {
  const at = (column: string | null | undefined) => (column ? header.indexOf(column) : -1);
  return {
    phone: at(mapping.phone),
    name: at(mapping.name),
    tags: at(mapping.tags),
    fields: Object.entries(mapping.fields ?? {}).map(([key, column]): [string, number] => [key, at(column)]),
  };
}

/** A row's number in E.164, or why the row cannot be taken. */
function phoneOf(
  record: string[],
  columns: number,
  at: number,
  region: string,
): { e164: string; error?: undefined } | { e164?: undefined; error: string } {
  if (record.length !== columns) return { error: `has ${record.length} columns, the header ${columns}` };
  const raw = record[at].trim();
  if (!raw) return { error: 'no phone number' };
  try {
    return { e164: normalizeNumber(raw, region, 'phone') };
  } catch (err) {
    return { error: err instanceof AppError ? err.message : `${raw} is not a phone number` };
  }
}

/** Rows read since the last write: contacts by number (duplicates folded), and the rows that failed. */
class Chunk {
  readonly contacts = new Map<string, store.ImportedContact>();
  readonly errors: ItemError[] = [];
  size = 0;
  /** Duplicates folded into an earlier row of the chunk (update) or left out (skip). */
  merged = 0;
  skipped = 0;
  readonly #onDuplicate: OnDuplicate;

  constructor(onDuplicate: OnDuplicate) {
    this.#onDuplicate = onDuplicate;
  }

  add(
    rowNumber: number,
    record: string[],
    columns: number,
    index: ReturnType<typeof columnIndexes>,
    o: ImportOptions,
  ): void {
    this.size++;
    const checked = phoneOf(record, columns, index.phone, o.defaultRegion ?? 'US');
    if (checked.error !== undefined) {
      this.errors.push({ item: `row ${rowNumber}`, message: checked.error });
      return;
    }
    const phone = checked.e164;
    const name = index.name >= 0 ? record[index.name].trim() || null : null;
    const fields: Record<string, string> = {};
    for (const [key, i] of index.fields) {
      const value = record[i].trim();
      if (value) fields[key] = value;
    }
    const own = index.tags >= 0 ? record[index.tags].split(/[;,|]/) : [];
    const tags = o.tags.length || own.length ? normalTags([...o.tags, ...own]) : [];
    const earlier = this.contacts.get(phone);
    if (!earlier) {
      this.contacts.set(phone, { id: newId(), phone, name, fields, tags });
      return;
    }
    if (this.#onDuplicate === 'skip') {
      this.skipped++;
      return;
    }
    this.merged++;
    earlier.name = name ?? earlier.name;
    Object.assign(earlier.fields, fields);
    if (tags.length) earlier.tags = normalTags([...earlier.tags, ...tags]);
  }
}
