// Drizzle, loaded through its CommonJS build. Loaded as ESM, drizzle's ~100 files each make Node parse
// its 180 KB package.json while resolving, which costs ~400 ms of start-up; the CJS build loads in ~70 ms.
// Every runtime use of drizzle goes through this file (test/conventions.test.ts checks), so only one
// copy of its classes exists (drizzle's `is()` checks compare them). Types still come from 'drizzle-orm'.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const core = require('drizzle-orm') as typeof import('drizzle-orm');
const pgCore = require('drizzle-orm/pg-core') as typeof import('drizzle-orm/pg-core');

export const { and, asc, count, desc, eq, gt, gte, inArray, isNull, like, lt, lte, ne, notInArray, or, sql } =
  core;
export const {
  bigint,
  boolean,
  date,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  smallint,
  text,
  timestamp,
  uuid,
} = pgCore;

export const loadNodePostgresDriver = () =>
  require('drizzle-orm/node-postgres') as typeof import('drizzle-orm/node-postgres');
export const loadPgliteDriver = () => require('drizzle-orm/pglite') as typeof import('drizzle-orm/pglite');

/** A `timestamptz` column read as a Date: every time column in Mailroom is one. */
export const timestamptz = (name: string) => pgCore.timestamp(name, { withTimezone: true, mode: 'date' });
