// Raw message bytes live behind this interface so they can move (to a file system or object store)
// without touching the modules that keep messages. The database is the default home: a blob written in
// the same transaction as the row that names it commits or vanishes with that row.
import type { SQL } from 'drizzle-orm';
import { executeTogether } from './bulk.ts';
import { binaryByteaArray } from './pg-binary.ts';
import type { Database, Db } from './db.ts';
import { uuidArrayLiteral } from './ids.ts';
import { sql } from './orm.ts';

export interface BlobStore {
  /** Stores each blob under its id, inside `tx` when the store is transactional. */
  put(tx: Db, blobs: NewBlob[]): Promise<void>;
  /**
   * For a store inside the database: the insert as a statement to put first in a `WITH`, so that one
   * statement writes the blobs and the rows that name them (the MX's hot path); null for no blobs.
   * Absent elsewhere.
   */
  insertStatement?(blobs: NewBlob[]): SQL | null;
  /** The bytes, or null when no such blob belongs to the organisation. */
  get(organizationId: string, id: string): Promise<Buffer | null>;
  /** Several blobs at once (the delivery queue's batches), by id; missing ones are absent. */
  getMany(refs: { organizationId: string; id: string }[]): Promise<Map<string, Buffer>>;
  delete(tx: Db, organizationId: string, ids: string[]): Promise<void>;
}

export interface NewBlob {
  organizationId: string;
  id: string;
  data: Buffer;
}

export class DatabaseBlobStore implements BlobStore {
  readonly #db: Db;
  readonly #copyRows: Database['copyRows'];

  /** With `copyRows` (PostgreSQL), batches are read in COPY's binary format. */
  constructor(db: Db, copyRows?: Database['copyRows']) {
    this.#db = db;
    this.#copyRows = copyRows;
  }

  async put(tx: Db, blobs: NewBlob[]): Promise<void> {
    await executeTogether(tx, [this.insertStatement(blobs)]);
  }

  /**
   * Three parameters whatever the batch's size: the ids as array literals and the bytes as one binary
   * bytea[], rather than three per blob for the ORM to build and the server to bind.
   */
  insertStatement(blobs: NewBlob[]): SQL | null {
    if (!blobs.length) return null;
    const ids = uuidArrayLiteral(blobs.map((b) => b.id));
    const organizations = uuidArrayLiteral(blobs.map((b) => b.organizationId));
    const data = binaryByteaArray(blobs.map((b) => b.data));
    return sql`insert into blobs (id, organization_id, data)
      select * from unnest(${ids}::uuid[], ${organizations}::uuid[], ${data}::bytea[])`;
  }

  async get(organizationId: string, id: string): Promise<Buffer | null> {
    const result = (await this.#db.execute(
      sql`select data from blobs where id = ${id} and organization_id = ${organizationId}`,
    )) as unknown as { rows: { data: Uint8Array }[] };
    const data = result.rows[0]?.data;
    return data ? asBuffer(data) : null;
  }

  async getMany(refs: { organizationId: string; id: string }[]): Promise<Map<string, Buffer>> {
    if (!refs.length) return new Map();
    if (this.#copyRows) return this.#copyMany(refs, this.#copyRows);
    const json = JSON.stringify(refs.map((r) => ({ id: r.id, organization_id: r.organizationId })));
    const result = (await this.#db.execute(sql`
      select b.id, b.data from blobs b
        join jsonb_to_recordset(${json}::jsonb) as r(id uuid, organization_id uuid)
          on b.id = r.id and b.organization_id = r.organization_id`)) as unknown as {
      rows: { id: string; data: Uint8Array }[];
    };
    return new Map(result.rows.map((r) => [r.id, asBuffer(r.data)]));
  }

  /**
   * getMany through COPY, which takes no parameters: the ids go into the statement as literals, and
   * only after they have proved to be UUIDs.
   */
  async #copyMany(
    refs: { organizationId: string; id: string }[],
    copyRows: NonNullable<Database['copyRows']>,
  ): Promise<Map<string, Buffer>> {
    const literal = (ids: string[]) => `'${uuidArrayLiteral(ids)}'::uuid[]`;
    const rows = await copyRows(`
      select b.id::text, b.data from blobs b
        join unnest(${literal(refs.map((r) => r.id))}, ${literal(refs.map((r) => r.organizationId))})
             as r(id, organization_id)
          on b.id = r.id and b.organization_id = r.organization_id`);
    return new Map(rows.map(([id, data]) => [id!.toString('latin1'), data!]));
  }

  async delete(tx: Db, organizationId: string, ids: string[]): Promise<void> {
    if (!ids.length) return;
    await tx.execute(
      sql`delete from blobs where organization_id = ${organizationId} and id in (${sql.join(
        ids.map((id) => sql`${id}`),
        sql`, `,
      )})`,
    );
  }
}

/** node-postgres returns a Buffer, PGlite a Uint8Array: one shape for callers. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
