// What the sync of external accounts works with, shared by the connections a worker holds.
import type { Logger } from 'pino';
import type { BlobStore } from '../../../core/blobs.ts';
import type { Db } from '../../../core/db.ts';
import type { EventsService } from '../../events/service.ts';
import type { InboundService } from '../../inbound/service.ts';
import type { AccountsService } from '../service.ts';

export interface SyncSettings {
  /** How often folders other than INBOX (which IDLE watches) are looked at. */
  pollMs: number;
  /** Messages fetched and stored per batch. */
  batchSize: number;
  /** A lease lasts this long; the owner renews it six times as often. */
  leaseMs: number;
  /** Backoff after a failure: doubling from 1 s up to this. */
  maxBackoffMs: number;
}

export interface SyncContext {
  db: Db;
  blobs: BlobStore;
  inbound: InboundService;
  events: EventsService;
  accounts: AccountsService;
  log: Logger;
  settings: SyncSettings;
}

/** NOTIFY channel: an account id whose worker should sync it now (POST /v1/accounts/:id/sync). */
export const SYNC_CHANNEL = 'mailroom_account_sync';
