import { v7 } from 'uuid';
import { z } from 'zod';

/** A new UUIDv7: time-ordered, so primary-key indexes stay compact. */
export const newId = (): string => v7();

export const uuidParam = z.uuid({ error: 'must be a UUID' });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: string): boolean => UUID.test(value);
