// Mailbox passwords: the policy for generated ones, and how each kind is hashed.
//
// Every password is stored as an argon2id hash. A person's password gets OWASP's parameters (19 MiB, two
// passes: ~35 ms); a generated one with at least 80 bits of entropy gets 8 MiB and one pass (~3 ms):
// no guessing reaches 2^80 whatever the hash costs, and generating a thousand mailboxes must not take a
// minute of CPU. Both run on libuv's thread pool (@node-rs/argon2's async calls), never the event loop.
import { randomInt } from 'node:crypto';
import { hash, type Options } from '@node-rs/argon2';
import { z } from 'zod';
import { validationFailed } from '../../core/errors.ts';
import { hashPassword } from '../../core/passwords.ts';

export interface PasswordPolicy {
  length: number;
  lower: boolean;
  upper: boolean;
  digits: boolean;
  symbols: boolean;
}

export const DEFAULT_POLICY: PasswordPolicy = {
  length: 20,
  lower: true,
  upper: true,
  digits: true,
  symbols: false,
};
export const MIN_GENERATED_LENGTH = 12;
export const MAX_GENERATED_LENGTH = 128;

// Look-alikes (l, I, O, 0, 1) are left out: these passwords are read off CSVs and screens. Symbols are
// those that survive CSV, shell and URL-encoded SMTP settings without quoting.
const CLASSES = {
  lower: 'abcdefghijkmnopqrstuvwxyz',
  upper: 'ABCDEFGHJKLMNPQRSTUVWXYZ',
  digits: '23456789',
  symbols: '!#%*+-=?@^_',
} as const;

const GENERATED: Options = {
  algorithm: 2 as Options['algorithm'],
  memoryCost: 8_192,
  timeCost: 1,
  parallelism: 1,
};
const GENERATED_MIN_BITS = 80;

/** A random password with at least one character of each class the policy asks for. */
export function generatePassword(policy: PasswordPolicy): string {
  const classes = (Object.keys(CLASSES) as (keyof typeof CLASSES)[]).filter((c) => policy[c]);
  if (!classes.length) throw validationFailed('password_policy', 'at least one character class is needed');
  if (policy.length < MIN_GENERATED_LENGTH || policy.length > MAX_GENERATED_LENGTH)
    throw validationFailed(
      'password_policy.length',
      `must be ${MIN_GENERATED_LENGTH} to ${MAX_GENERATED_LENGTH}`,
    );
  const alphabet = classes.map((c) => CLASSES[c]).join('');
  const chars = classes.map((c) => pick(CLASSES[c]));
  while (chars.length < policy.length) chars.push(pick(alphabet));
  // Fisher–Yates, so the guaranteed characters are not always first.
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j], chars[i]];
  }
  // Never a symbol first: a spreadsheet opening an export would read `=`, `+`, `-` or `@` as a formula.
  const first = chars.findIndex((c) => !CLASSES.symbols.includes(c));
  if (first > 0) [chars[0], chars[first]] = [chars[first], chars[0]];
  return chars.join('');
}

/** Bits of entropy of a password the policy generates (a lower bound: the guaranteed characters aside). */
export function policyBits(policy: PasswordPolicy): number {
  const size = (Object.keys(CLASSES) as (keyof typeof CLASSES)[])
    .filter((c) => policy[c])
    .reduce((n, c) => n + CLASSES[c].length, 0);
  return size > 1 ? policy.length * Math.log2(size) : 0;
}

/** The hash of a password this module generated under `policy`. */
export function hashGeneratedPassword(password: string, policy: PasswordPolicy): Promise<string> {
  return policyBits(policy) >= GENERATED_MIN_BITS ? hash(password, GENERATED) : hashPassword(password);
}

function pick(alphabet: string): string {
  return alphabet[randomInt(alphabet.length)];
}

/** A password policy as the API takes it: every field optional, the defaults above. */
export const passwordPolicySchema = z
  .strictObject({
    length: z
      .number()
      .int()
      .min(MIN_GENERATED_LENGTH)
      .max(MAX_GENERATED_LENGTH)
      .default(DEFAULT_POLICY.length),
    lower: z.boolean().default(DEFAULT_POLICY.lower),
    upper: z.boolean().default(DEFAULT_POLICY.upper),
    digits: z.boolean().default(DEFAULT_POLICY.digits),
    symbols: z.boolean().default(DEFAULT_POLICY.symbols),
  })
  .refine((p) => p.lower || p.upper || p.digits || p.symbols, 'at least one character class is needed')
  .describe(
    `Generated passwords: length ${MIN_GENERATED_LENGTH}–${MAX_GENERATED_LENGTH} (default ${DEFAULT_POLICY.length}) and character classes (default letters and digits; look-alikes such as l, I, O, 0 and 1 are never used)`,
  );
