// The event catalogue. A module declares each event it emits once, next to its code:
//
//   export const domainVerified = defineEvent('domain.verified', 'A domain passed verification',
//     z.object({ domain_id: z.uuid(), name: z.string() }));
//
// and emits it in the transaction of the change with `events.emit(tx, domainVerified, orgId, data)`.
// The declaration is the documentation: `/v1/event-types` and the OpenAPI document list every type
// with its JSON Schema, and webhook endpoints may subscribe only to declared types.
import { z } from 'zod';

export interface EventDefinition<T extends string = string, S extends z.ZodType = z.ZodType> {
  readonly type: T;
  readonly description: string;
  readonly schema: S;
}

/** What an event's `data` must look like for a definition. */
export type EventData<D extends EventDefinition> = z.input<D['schema']>;

const TYPE_NAME = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const catalogue = new Map<string, EventDefinition>();

export function defineEvent<T extends string, S extends z.ZodType>(
  type: T,
  description: string,
  schema: S,
): EventDefinition<T, S> {
  if (!TYPE_NAME.test(type)) throw new Error(`event type "${type}" must be dotted lower-case words`);
  if (catalogue.has(type)) throw new Error(`event type "${type}" is declared twice`);
  const definition = { type, description, schema };
  catalogue.set(type, definition);
  return definition;
}

/** Every declared type, sorted by name. */
export function eventCatalogue(): EventDefinition[] {
  return [...catalogue.values()].sort((a, b) => a.type.localeCompare(b.type));
}

export function isDeclaredEventType(type: string): boolean {
  return catalogue.has(type);
}

/**
 * A subscription filter: exact types, or `family.*` for every type under a prefix. Valid when each
 * entry names at least one declared type.
 */
export function isValidEventFilter(entry: string): boolean {
  if (entry.endsWith('.*')) {
    const prefix = entry.slice(0, -1);
    return [...catalogue.keys()].some((t) => t.startsWith(prefix));
  }
  return catalogue.has(entry);
}

/** An empty filter matches every type. */
export function eventTypeMatches(filter: readonly string[], type: string): boolean {
  if (filter.length === 0) return true;
  return filter.some((f) => f === type || (f.endsWith('.*') && type.startsWith(f.slice(0, -1))));
}

/** JSON Schema of each declared type's `data`, for the OpenAPI document. */
export function eventJsonSchemas(): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  for (const d of eventCatalogue()) {
    schemas[d.type] = { description: d.description, ...z.toJSONSchema(d.schema, { io: 'input' }) };
  }
  return schemas;
}
