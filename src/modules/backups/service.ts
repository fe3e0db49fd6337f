// Backups: an organisation's whole data as one archive, and restores of it into this installation as
// the same organisation (every id kept) or as a new one. The CLI streams to and from a file; the API
// keeps archives in the database (any process can serve one, whichever made it) and runs backups and
// restores as tracked jobs (GET /v1/jobs/:id) of the administrator's organisation.
import type { Writable } from 'node:stream';
import type { PGlite } from '@electric-sql/pglite';
import type { Logger } from 'pino';
import { Secrets } from '../../core/crypto.ts';
import type { Database, Db } from '../../core/db.ts';
import { AppError, badRequest, conflict, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { loadNodePostgresDriver, loadPgliteDriver } from '../../core/orm.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { JobRow, RunningJob, TrackedJobsService } from '../jobs/service.ts';
import type { OrganizationsService } from '../organizations/service.ts';
import { ArchiveError, type ArchiveHeader, type ArchiveItem, readArchive } from './archive.ts';
import {
  ArchiveThread,
  BackupCancelled,
  type BackupResult,
  chunkSink,
  embeddedReader,
  keyFingerprint,
  postgresReader,
  prewarmThread,
  writeOrganization,
} from './backup.ts';
import { backupPlan, type Catalogue, classify, loadCatalogue } from './catalogue.ts';
import { checkFit, RestoreCancelled, type RestoreMode, type RestoreResult, restoreItems } from './restore.ts';
import * as store from './store.ts';
import type { ArchiveRow } from './tables.ts';

export type { ArchiveRow } from './tables.ts';
export type { RestoreMode, RestoreResult } from './restore.ts';

export const BACKUP_JOB = 'backups.create';
export const RESTORE_JOB = 'backups.restore';

/** Bytes per stored chunk of an archive. */
const CHUNK_BYTES = 4 * 1024 * 1024;

export interface BackupsOptions {
  database: Database;
  secrets: Secrets;
  jobs: TrackedJobsService;
  organizations: OrganizationsService;
  log: Logger;
  hostname: string;
  version: string;
  /** The largest archive an upload may send (MAILROOM_BACKUP_UPLOAD_LIMIT). */
  uploadLimit: number;
}

export interface RestoreRequest {
  mode: RestoreMode;
  name?: string;
  slug?: string;
  /** The source installation's MAILROOM_SECRET_KEY (64 hex), when it differs from this one's. */
  sourceKey?: string;
}

interface BackupJobInput {
  archive_id: string;
  organization_id: string;
}

interface RestoreJobInput {
  archive_id: string;
  mode: RestoreMode;
  name?: string;
  slug?: string;
  /** The source key, sealed under this installation's key. */
  sealed_source_key?: string;
}

export class BackupsService {
  readonly #o: BackupsOptions;
  readonly #db: Db;

  constructor(options: BackupsOptions) {
    this.#o = options;
    this.#db = options.database.db;
  }

  registerRunners(): void {
    // Filed under the administrator's organisation, about another one: not its other members' business.
    const platform = { platform: true };
    this.#o.jobs.register<BackupJobInput>(BACKUP_JOB, { run: (job) => this.#runBackup(job) }, platform);
    this.#o.jobs.register<RestoreJobInput>(RESTORE_JOB, { run: (job) => this.#runRestore(job) }, platform);
  }

  // ---- streaming: what the CLI and the jobs share -----------------------------------------------------

  /** The catalogue and how it classifies every table (for the docs and the tests). */
  async catalogue(): Promise<{ catalogue: Catalogue; classification: ReturnType<typeof classify> }> {
    const catalogue = await loadCatalogue(this.#db);
    return { catalogue, classification: classify(catalogue) };
  }

  /**
   * Writes the organisation's archive to `out` from one snapshot of the database. `onTable` runs after
   * each table (with the number of tables); `cancelled` is asked between batches.
   */
  async backupTo(
    organizationId: string,
    out: Writable,
    hooks: {
      onTable?(table: string, done: number, total: number): Promise<void> | void;
      cancelled?(): boolean;
    } = {},
    sinkInTransaction?: (tx: Db) => Writable,
  ): Promise<BackupResult> {
    const organization = await store.organizationById(this.#db, organizationId);
    if (!organization) throw notFound('Organization');
    prewarmThread();
    const catalogue = await loadCatalogue(this.#db);
    const plans = backupPlan(catalogue, organizationId);
    const migrations = await store.appliedMigrations(this.#db);
    const embedded = this.#o.database.engine === 'pglite';
    let done = 0;
    // The embedded engine has one session: a sink that writes to the database writes inside the snapshot.
    const readOnly = !(embedded && sinkInTransaction);
    const source = {
      hostname: this.#o.hostname,
      version: this.#o.version,
      engine: this.#o.database.engine,
      migrations,
      secrets: this.#o.secrets,
    };
    const tableHooks = { tableDone: async (table: string) => hooks.onTable?.(table, ++done, plans.length) };
    const cancelled = () => hooks.cancelled?.() ?? false;
    const raw = this.#o.database.raw;
    if (raw.kind === 'postgres') {
      // A connection of its own for the snapshot; the archive's thread reads in it on another.
      const client = await raw.pool.connect();
      const thread = new ArchiveThread(out, cancelled);
      try {
        await client.query('begin isolation level repeatable read read only');
        const tx = loadNodePostgresDriver().drizzle(client) as unknown as Db;
        const reader = await postgresReader(tx, thread, raw.url, cancelled);
        const result = await writeOrganization(tx, plans, organization, source, thread, reader, tableHooks);
        await client.query('commit');
        client.release();
        return result;
      } catch (err) {
        thread.abort(err as Error);
        await client.query('rollback').catch(() => {});
        client.release();
        throw err;
      }
    }
    // The embedded engine's own transaction, whose FETCHes can answer as bytes (EmbeddedTransaction.raw);
    // the ORM runs over it for everything else.
    return raw.pglite.transaction(async (etx) => {
      await etx.query(
        `set transaction isolation level repeatable read, ${readOnly ? 'read only' : 'read write'}`,
      );
      // Every cursor is read to its end: plans for all rows, not for the first tenth.
      await etx.query('set local cursor_tuple_fraction = 1');
      const tx = loadPgliteDriver().drizzle(etx as unknown as PGlite) as unknown as Db;
      const sink = sinkInTransaction ? sinkInTransaction(tx) : out;
      const thread = new ArchiveThread(sink, cancelled);
      try {
        const reader = embeddedReader(etx, thread, cancelled);
        return await writeOrganization(tx, plans, organization, source, thread, reader, tableHooks);
      } catch (err) {
        thread.abort(err as Error);
        throw err;
      }
    });
  }

  /** An organisation by its id or its slug (the CLI takes either). */
  async findOrganization(idOrSlug: string): Promise<{ id: string; name: string; slug: string }> {
    const found = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrSlug)
      ? await store.organizationById(this.#db, idOrSlug.toLowerCase())
      : await store.organizationBySlug(this.#db, idOrSlug);
    if (!found) throw notFound('Organization');
    return found;
  }

  /** Checks an archive's header against this installation before a restore (422 or 409 when it does not fit). */
  async checkArchive(header: ArchiveHeader, request: RestoreRequest): Promise<void> {
    this.#sourceSecrets(header, request.sourceKey);
    const catalogue = await loadCatalogue(this.#db);
    await checkFit(this.#db, catalogue, header, request);
  }

  /**
   * Restores an archive from its compressed bytes, in one transaction. `onRows` runs after each batch;
   * `cancelled` is asked between batches. `source` is read inside the transaction when given as a
   * function of it (the embedded engine's one session).
   */
  async restoreFrom(
    source: AsyncIterable<Buffer> | ((tx: Db) => AsyncIterable<Buffer>),
    request: RestoreRequest,
    hooks: { onRows?(rows: number, db: Db): Promise<void> | void; cancelled?(): boolean } = {},
  ): Promise<RestoreResult> {
    const catalogue = await loadCatalogue(this.#db);
    return this.#db.transaction(async (txHandle) => {
      const tx = txHandle as unknown as Db;
      const items: AsyncGenerator<ArchiveItem> = readArchive(
        typeof source === 'function' ? source(tx) : source,
      );
      try {
        const first = await items.next();
        if (first.done || first.value.type !== 'header') throw new ArchiveError('the archive has no header');
        const { header } = first.value;
        const sourceSecrets = this.#sourceSecrets(header, request.sourceKey);
        await checkFit(tx, catalogue, header, request);
        return await restoreItems(
          tx,
          catalogue,
          header,
          items,
          {
            mode: request.mode,
            name: request.name,
            slug: request.slug,
            sourceSecrets,
            targetSecrets: this.#o.secrets,
          },
          { progress: async (rows) => hooks.onRows?.(rows, tx), cancelled: hooks.cancelled },
        );
      } finally {
        await items.return(undefined as never).catch(() => {});
      }
    });
  }

  /**
   * The Secrets that open the archive's sealed values: null when this installation's key sealed them;
   * else the source key, which must be given (and be the right one).
   */
  #sourceSecrets(header: ArchiveHeader, sourceKey: string | undefined): Secrets | null {
    const fingerprint = header.source.key_fingerprint;
    if (fingerprint === keyFingerprint(this.#o.secrets)) return null;
    if (!sourceKey)
      throw new AppError(
        422,
        'source_key_required',
        'The archive’s secrets are sealed under another installation’s key: give that MAILROOM_SECRET_KEY as the source key',
      );
    const key = parseKey(sourceKey);
    const secrets = new Secrets(key);
    if (keyFingerprint(secrets) !== fingerprint)
      throw new AppError(
        422,
        'source_key_mismatch',
        'The source key is not the key that sealed this archive',
      );
    return secrets;
  }

  // ---- the API: archives kept by the installation, and the jobs ----------------------------------------

  /** Starts a backup of `organizationId` as a job filed under `jobOrganizationId` (the administrator's). */
  async startBackup(
    organizationId: string,
    jobOrganizationId: string,
    actor: { userId: string },
  ): Promise<{ archive: ArchiveRow; job: JobRow }> {
    const organization = await store.organizationById(this.#db, organizationId);
    if (!organization) throw notFound('Organization');
    const catalogue = await loadCatalogue(this.#db);
    const tables = backupPlan(catalogue, organizationId).length;
    const id = newId();
    return this.#db.transaction(async (txHandle) => {
      const tx = txHandle as unknown as Db;
      const archive = await store.insertArchive(tx, {
        id,
        origin: 'backup',
        state: 'writing',
        sourceOrganizationId: organization.id,
        sourceOrganizationName: organization.name,
        jobId: id,
        jobOrganizationId,
        createdBy: actor.userId,
      });
      const { job } = await this.#o.jobs.create(
        jobOrganizationId,
        {
          id,
          kind: BACKUP_JOB,
          input: { archive_id: id, organization_id: organization.id } satisfies BackupJobInput,
          total: tables,
          createdBy: `user:${actor.userId}`,
        },
        tx,
      );
      return { archive, job };
    });
  }

  async #runBackup(job: RunningJob<BackupJobInput>): Promise<Record<string, unknown>> {
    const { archive_id: archiveId, organization_id: organizationId } = job.input;
    const embedded = this.#o.database.engine === 'pglite';
    // A resumed job starts again: whatever the last run stored goes.
    await store.deleteChunks(this.#db, archiveId);
    await store.updateArchive(this.#db, archiveId, { state: 'writing', failure: null, size: 0 });
    let counted = 0;
    try {
      const put = (db: Db) => (seq: number, data: Buffer) => store.insertChunk(db, archiveId, seq, data);
      let txDb: Db | null = null;
      const result = await this.backupTo(
        organizationId,
        chunkSink(CHUNK_BYTES, put(this.#db)),
        {
          onTable: async (_table, done) => {
            // Counted once, also when a resumed job goes over tables an earlier run counted.
            if (done <= job.done) return;
            counted++;
            await job.progress(embedded && txDb ? txDb : this.#db, 1);
          },
          cancelled: () => job.cancelRequested(),
        },
        (tx) => {
          txDb = tx;
          return chunkSink(CHUNK_BYTES, put(tx));
        },
      );
      await store.updateArchive(this.#db, archiveId, {
        state: 'complete',
        size: result.stats.archiveBytes,
        sha256: result.stats.archiveSha256,
        header: result.header,
        summary: result.trailer,
        completedAt: new Date(),
      });
      return {
        archive_id: archiveId,
        organization_id: organizationId,
        tables: result.header.tables.length,
        rows: result.trailer.rows,
        binary_bytes: result.trailer.binary_bytes,
        size: result.stats.archiveBytes,
        sha256: result.stats.archiveSha256,
        progress_counted: counted,
        links: {
          archive: `/v1/admin/backups/${archiveId}`,
          download: `/v1/admin/backups/${archiveId}/download`,
        },
      };
    } catch (err) {
      const cancelled = err instanceof BackupCancelled;
      await store.failArchive(this.#db, archiveId, cancelled ? 'cancelled' : (err as Error).message);
      if (cancelled) return { archive_id: archiveId, cancelled: true };
      throw err;
    }
  }

  /**
   * Keeps an uploaded archive after reading it through (every checksum checked): 422 when it is not a
   * whole, intact Mailroom archive, 413 past the upload limit.
   */
  async upload(body: AsyncIterable<Buffer>, actor: { userId: string }): Promise<ArchiveRow> {
    const id = newId();
    let seq = 0;
    let size = 0;
    const limit = this.#o.uploadLimit;
    let header: ArchiveHeader | null = null;
    // Named after its organisation once the header is read; deleted again if the upload fails.
    await store.insertArchive(this.#db, {
      id,
      origin: 'upload',
      state: 'writing',
      sourceOrganizationId: '00000000-0000-0000-0000-000000000000',
      createdBy: actor.userId,
    });
    let trailer: ArchiveRow['summary'] = null;
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256');
    const self = this;
    // The bytes as they arrive, stored in chunks on the way to the reader that checks them.
    async function* stored(): AsyncGenerator<Buffer> {
      let held: Buffer[] = [];
      let heldBytes = 0;
      const flush = async () => {
        if (!heldBytes) return;
        await store.insertChunk(self.#db, id, seq++, Buffer.concat(held, heldBytes));
        held = [];
        heldBytes = 0;
      };
      for await (const raw of body) {
        const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
        size += chunk.length;
        if (size > limit)
          throw new AppError(
            413,
            'payload_too_large',
            `An archive may have at most ${limit} bytes (MAILROOM_BACKUP_UPLOAD_LIMIT)`,
          );
        hash.update(chunk);
        held.push(chunk);
        heldBytes += chunk.length;
        if (heldBytes >= CHUNK_BYTES) await flush();
        yield chunk;
      }
      await flush();
    }
    try {
      for await (const item of readArchive(stored())) {
        if (item.type === 'header') {
          header = item.header;
          await store.updateArchive(this.#db, id, {
            sourceOrganizationId: header.organization.id.toLowerCase(),
            sourceOrganizationName: header.organization.name,
            header,
          });
        } else if (item.type === 'end') trailer = item.trailer;
      }
    } catch (err) {
      await store.deleteArchive(this.#db, id);
      if (err instanceof ArchiveError) throw new AppError(422, 'archive_invalid', err.message);
      throw err;
    }
    if (!header || !trailer) {
      await store.deleteArchive(this.#db, id);
      throw new AppError(422, 'archive_invalid', 'the archive is empty');
    }
    await store.updateArchive(this.#db, id, {
      state: 'complete',
      size,
      sha256: hash.digest('hex'),
      summary: trailer,
      completedAt: new Date(),
    });
    return (await store.archiveById(this.#db, id))!;
  }

  /** Starts a restore of a kept archive as a job filed under `jobOrganizationId`. */
  async startRestore(
    archiveId: string,
    request: RestoreRequest,
    jobOrganizationId: string,
    actor: { userId: string },
  ): Promise<JobRow> {
    const archive = await this.get(archiveId);
    if (archive.state !== 'complete' || !archive.header)
      throw conflict(`The archive is not complete (${archive.state})`);
    // Checked now, so that a misfit is a 4xx here rather than a failed job later.
    await this.checkArchive(archive.header, request);
    const input: RestoreJobInput = {
      archive_id: archive.id,
      mode: request.mode,
      ...(request.name !== undefined ? { name: request.name } : {}),
      ...(request.slug !== undefined ? { slug: request.slug } : {}),
      ...(request.sourceKey ? { sealed_source_key: this.#o.secrets.encrypt(request.sourceKey) } : {}),
    };
    const total = archive.header.tables.reduce((sum, t) => sum + t.rows, 0);
    const { job } = await this.#o.jobs.create(jobOrganizationId, {
      kind: RESTORE_JOB,
      input,
      total,
      createdBy: `user:${actor.userId}`,
    });
    return job;
  }

  async #runRestore(job: RunningJob<RestoreJobInput>): Promise<Record<string, unknown>> {
    const input = job.input;
    const embedded = this.#o.database.engine === 'pglite';
    let seen = 0;
    try {
      const result = await this.restoreFrom(
        (tx) => this.#chunksOf(input.archive_id, embedded ? tx : this.#db),
        {
          mode: input.mode,
          name: input.name,
          slug: input.slug,
          sourceKey: input.sealed_source_key ? this.#o.secrets.decrypt(input.sealed_source_key) : undefined,
        },
        {
          onRows: async (rows, tx) => {
            // Rows an earlier, rolled-back run counted are not counted again.
            const before = seen;
            seen += rows;
            const fresh = Math.max(0, seen - Math.max(before, job.done));
            if (fresh) await job.progress(embedded ? tx : this.#db, fresh);
          },
          cancelled: () => job.cancelRequested(),
        },
      );
      return {
        ...result,
        archive_id: input.archive_id,
        links: { organization: `/v1/organizations/${result.organization.id}` },
      };
    } catch (err) {
      if (err instanceof RestoreCancelled) return { archive_id: input.archive_id, cancelled: true };
      if (err instanceof ArchiveError) throw new Error(`the archive cannot be restored: ${err.message}`);
      throw err;
    }
  }

  /** An archive's bytes, read in order from its chunks. */
  async *#chunksOf(archiveId: string, db: Db): AsyncGenerator<Buffer> {
    for (let seq = 0; ; ) {
      const page = await store.chunks(db, archiveId, seq, 4);
      if (!page.length) return;
      for (const chunk of page) {
        if (chunk.seq !== seq) throw new ArchiveError('the stored archive is missing a chunk');
        seq++;
        yield chunk.data;
      }
    }
  }

  async get(archiveId: string): Promise<ArchiveRow> {
    const archive = await store.archiveById(this.#db, archiveId);
    if (!archive) throw notFound('Backup');
    return archive;
  }

  /** The job that writes an archive (for its progress), when it was made by a backup here. */
  async jobOf(archive: ArchiveRow): Promise<JobRow | null> {
    if (!archive.jobId || !archive.jobOrganizationId) return null;
    return this.#o.jobs.get(archive.jobOrganizationId, archive.jobId).catch(() => null);
  }

  async list(filter: { organizationId?: string }, page: PageRequest) {
    const { rows, total } = await store.listArchives(this.#db, filter, page);
    return toPage(rows, total, page);
  }

  async delete(archiveId: string): Promise<void> {
    const archive = await this.get(archiveId);
    if (archive.state === 'writing' && archive.origin === 'backup')
      throw conflict('The backup is still being written: cancel its job first');
    await store.deleteArchive(this.#db, archiveId);
  }

  /** A complete archive's bytes, streamed from its chunks (409 while it is written). */
  async download(archiveId: string): Promise<{ archive: ArchiveRow; stream: AsyncGenerator<Buffer> }> {
    const archive = await this.get(archiveId);
    if (archive.state !== 'complete') throw conflict(`The backup is not complete (${archive.state})`);
    return { archive, stream: this.#chunksOf(archiveId, this.#db) };
  }

  /**
   * The organisation a platform administrator's jobs are filed under: the one named (they must be a
   * member), else their only one.
   */
  async homeOrganization(userId: string, named: string | undefined): Promise<string> {
    const { organizations } = this.#o;
    if (named !== undefined) {
      if (!/^[0-9a-f-]{36}$/i.test(named) || !(await organizations.membershipRole(named, userId)))
        throw notFound('Organization');
      return named.toLowerCase();
    }
    const sole = await organizations.soleOrganization(userId);
    if (!sole)
      throw new AppError(
        400,
        'organization_required',
        'Name the organisation to file the job under with the X-Organization-Id header (you belong to none or several)',
      );
    return sole;
  }
}

/** A MAILROOM_SECRET_KEY as given: 64 hex characters. */
export function parseKey(value: string): Buffer {
  const trimmed = value.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(trimmed))
    throw badRequest('The source key must be 64 hexadecimal characters');
  return Buffer.from(trimmed, 'hex');
}
