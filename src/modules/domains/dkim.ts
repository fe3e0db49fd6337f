// DKIM keys: RSA (1024, 2048, 4096 bits) or Ed25519 (RFC 8463). The DNS record carries the public
// key (`p=`: the SubjectPublicKeyInfo for RSA, the raw 32-byte key for Ed25519); the private key is
// kept sealed under MAILROOM_SECRET_KEY and only opened to sign.
import { createPublicKey, generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';

export type DkimAlgorithm = 'rsa' | 'ed25519';
export const RSA_KEY_SIZES = [1024, 2048, 4096] as const;
export type RsaKeySize = (typeof RSA_KEY_SIZES)[number];

export interface GeneratedDkimKey {
  algorithm: DkimAlgorithm;
  bits: number | null;
  /** The base64 `p=` value. */
  publicKey: string;
  privateKeyPem: string;
}

const generate = promisify(generateKeyPair);

export async function generateDkimKey(
  algorithm: DkimAlgorithm,
  bits: RsaKeySize = 2048,
): Promise<GeneratedDkimKey> {
  if (algorithm === 'ed25519') {
    const { publicKey, privateKey } = await generate('ed25519', {
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    // The SPKI of an Ed25519 key ends with the 32-byte raw key, which is what RFC 8463 publishes.
    return {
      algorithm,
      bits: null,
      publicKey: publicKey.subarray(-32).toString('base64'),
      privateKeyPem: privateKey,
    };
  }
  const { publicKey, privateKey } = await generate('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { algorithm, bits, publicKey: publicKey.toString('base64'), privateKeyPem: privateKey };
}

/** The TXT value for `<selector>._domainkey.<domain>`. */
export function dkimRecordValue(algorithm: DkimAlgorithm, publicKey: string): string {
  return `v=DKIM1; k=${algorithm}; p=${publicKey}`;
}

/**
 * A selector that carries the key's date (`mr20261122`), with a suffix when that day already has
 * one (`mr20261122b`), so each rotation publishes at a name of its own.
 */
export function dkimSelector(at: Date, taken: ReadonlySet<string>): string {
  const base = `mr${at.toISOString().slice(0, 10).replaceAll('-', '')}`;
  if (!taken.has(base)) return base;
  for (let i = 1; i < 26; i++) {
    const candidate = base + String.fromCharCode(97 + i);
    if (!taken.has(candidate)) return candidate;
  }
  return `${base}-${Date.now().toString(36)}`;
}

/** True when two `p=` values are the same key (RSA keys may be published as SPKI or PKCS#1). */
export function samePublicKey(algorithm: DkimAlgorithm, published: string, ours: string): boolean {
  const clean = published.replace(/\s+/g, '');
  if (clean === ours) return true;
  if (algorithm !== 'rsa') return false;
  try {
    const theirs = createPublicKey({ key: Buffer.from(clean, 'base64'), format: 'der', type: 'pkcs1' });
    const mine = createPublicKey({ key: Buffer.from(ours, 'base64'), format: 'der', type: 'spki' });
    return theirs.equals(mine);
  } catch {
    return false;
  }
}
