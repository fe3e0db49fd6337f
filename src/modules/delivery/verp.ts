// VERP (variable envelope return path): every outbound delivery leaves with its own envelope sender,
//
//   b+<token>@bounces.<hosted domain>
//
// so a bounce names the delivery it is about even when its body cannot be read. The token is the
// delivery's UUID followed by an 80-bit HMAC over that UUID and the hosted domain, written in lower-case
// base32: remote MTAs may change the case of a local part, and without the MAC anyone could send us
// forged bounces that suppress a real recipient. The MAC binds the domain, so a token is refused when
// moved to another domain.
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const ID_BYTES = 16;
const MAC_BYTES = 10;
const TOKEN_CHARS = Math.ceil(((ID_BYTES + MAC_BYTES) * 8) / 5);
const LOCAL_PART = new RegExp(`^b\\+([a-z2-7]{${TOKEN_CHARS}})$`, 'i');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// A hosted domain short enough that `bounces.` in front still fits a 253-character name.
const DOMAIN =
  /^(?=.{1,245}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const MIN_KEY_BYTES = 32;

export interface VerpOptions {
  /** 32 bytes, derived from the master key. */
  key: Buffer;
}

/** VERP return-path addresses: `b+<token>@bounces.<domain>`; the token names one outbound delivery and carries an HMAC so forged bounces are refused at RCPT time. */
export class Verp {
  static readonly LABEL = 'bounces';
  /** Imported once: an HMAC set up from raw key bytes costs more than the MAC itself. */
  readonly #key: KeyObject;

  constructor(options: VerpOptions) {
    if (options.key.length < MIN_KEY_BYTES) throw new RangeError(`VERP key must be ${MIN_KEY_BYTES} bytes`);
    this.#key = createSecretKey(options.key);
  }

  /** The envelope sender for delivery `deliveryId` (a UUID) sent from hosted `domain` (already lower-case, A-label). */
  address(deliveryId: string, domain: string): string {
    const id = deliveryId.toLowerCase();
    if (!UUID.test(id)) throw new TypeError(`VERP delivery id is not a UUID: ${deliveryId}`);
    if (!DOMAIN.test(domain)) throw new TypeError(`VERP domain is not a lower-case A-label name: ${domain}`);
    const idBytes = Buffer.from(id.replaceAll('-', ''), 'hex');
    const token = base32Encode(Buffer.concat([idBytes, this.#mac(idBytes, domain)]));
    return `b+${token}@${Verp.LABEL}.${domain}`;
  }

  /** The delivery a bounce address names, or null when it is not ours / forged / malformed. Accepts any case. */
  parse(address: string): { deliveryId: string; domain: string } | null {
    const normal = address.trim().toLowerCase();
    const at = normal.lastIndexOf('@');
    if (at <= 0) return null;
    const token = LOCAL_PART.exec(normal.slice(0, at))?.[1];
    const domain = hostedDomainOf(normal.slice(at + 1));
    if (!token || !domain) return null;
    const bytes = base32Decode(token);
    if (!bytes) return null;
    const idBytes = bytes.subarray(0, ID_BYTES);
    if (!timingSafeEqual(bytes.subarray(ID_BYTES), this.#mac(idBytes, domain))) return null;
    return { deliveryId: formatUuid(idBytes), domain };
  }

  #mac(idBytes: Buffer, domain: string): Buffer {
    // The label separates these MACs from anything else signed with a key derived from the same master.
    return createHmac('sha256', this.#key)
      .update(`mailroom-verp-v1\0${domain}\0`)
      .update(idBytes)
      .digest()
      .subarray(0, MAC_BYTES);
  }
}

/** The shape of a VERP local part (`b+` and a token), without checking its MAC. */
export function isVerpLocalPart(localPart: string): boolean {
  return LOCAL_PART.test(localPart);
}

function hostedDomainOf(bounceDomain: string): string | null {
  const prefix = `${Verp.LABEL}.`;
  if (!bounceDomain.startsWith(prefix)) return null;
  const domain = bounceDomain.slice(prefix.length);
  return DOMAIN.test(domain) ? domain : null;
}

function formatUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function base32Encode(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(value >> bits) & 31];
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** The bytes of a token; null unless it is exactly one canonical encoding (unused trailing bits zero). */
function base32Decode(token: string): Buffer | null {
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of token) {
    const digit = BASE32.indexOf(char);
    if (digit < 0) return null;
    value = ((value << 5) | digit) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >> bits) & 0xff);
    }
  }
  if (bytes.length !== ID_BYTES + MAC_BYTES || (value & ((1 << bits) - 1)) !== 0) return null;
  return Buffer.from(bytes);
}
