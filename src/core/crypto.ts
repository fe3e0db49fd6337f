// Secrets: the master key, AES-256-GCM for secrets at rest, derived keys, random tokens and hashes.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The configured key, or (embedded mode only) the one kept in the data dir, generated on first start.
 * With DATABASE_URL the config layer already insists on an explicit key.
 */
export function loadSecretKey(configured: Buffer | null, dataDir: string | null): Buffer {
  if (configured) return configured;
  if (!dataDir) return randomBytes(32);
  const file = path.join(dataDir, 'secret.key');
  if (existsSync(file)) {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte hex key`);
    return key;
  }
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return key;
}

export class Secrets {
  /**
   * A KeyObject rather than the key's bytes: a cipher made from bytes imports the key again each time
   * (~40 µs here), one from a KeyObject does not (~6 µs), and exports decrypt a password per row.
   */
  readonly #encryptionKey: KeyObject;
  readonly jwtKey: Uint8Array;
  /** Signs SRS return addresses (forwarding). */
  readonly srsKey: Buffer;
  /** Signs VERP return addresses (outbound bounces). */
  readonly verpKey: Buffer;

  constructor(masterKey: Buffer) {
    this.#encryptionKey = createSecretKey(derive(masterKey, 'mailroom/encryption/v1'));
    this.jwtKey = new Uint8Array(derive(masterKey, 'mailroom/jwt/v1'));
    this.srsKey = derive(masterKey, 'mailroom/srs/v1');
    this.verpKey = derive(masterKey, 'mailroom/verp/v1');
  }

  /** `v1.<iv>.<tag>.<ciphertext>`, base64url. */
  encrypt(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#encryptionKey, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv, cipher.getAuthTag(), body]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }

  decrypt(sealed: string): string {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('not a sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.#encryptionKey, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  }
}

function derive(master: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), info, 32));
}

/** A URL-safe random token with `bytes` bytes of entropy. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** For high-entropy tokens (refresh tokens, API keys, mailed tokens) a plain SHA-256 is the right hash. */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
