import { v7 } from 'uuid';
import { z } from 'zod';

/** A new UUIDv7: time-ordered, so primary-key indexes stay compact. */
export const newId = (): string => v7();

export const uuidParam = z.uuid({ error: 'must be a UUID' });
