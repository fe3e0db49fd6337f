// Sender Rewriting Scheme: a forwarded message leaves with an envelope sender on the forwarding domain,
// so SPF passes at the next hop, and a bounce to that address finds its way back to the original sender.
//
//   SRS0=HHHH=TT=orig-domain=orig-local@forwarder          first forward
//   SRS1=HHHH=first-forwarder==HHHH=TT=orig-domain=orig-local@forwarder   forwarding an SRS0 address again
//
// HHHH is an HMAC over the rest (lower case, base32), TT the day it was made (two base32 digits, days
// mod 1024). Only addresses we signed and that are younger than the maximum age are honoured: otherwise
// a forwarder becomes an open relay for bounces.
import { createHmac, timingSafeEqual } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const DAY_MS = 86_400_000;
const TIMESTAMP_CYCLE = 1024;

export interface SrsOptions {
  key: Buffer;
  /** Days an SRS address stays valid for bounces. */
  maxAgeDays: number;
  now?: () => number;
}

export class Srs {
  readonly #key: Buffer;
  readonly #maxAgeDays: number;
  readonly #now: () => number;

  constructor(options: SrsOptions) {
    this.#key = options.key;
    this.#maxAgeDays = options.maxAgeDays;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The envelope sender for forwarding mail from `sender` through `forwardingDomain`. The null sender
   * stays null (bounces are never rewritten); an SRS address is wrapped as SRS1, not nested.
   */
  rewrite(sender: string, forwardingDomain: string): string {
    if (!sender) return '';
    const at = sender.lastIndexOf('@');
    if (at <= 0) return '';
    const local = sender.slice(0, at).toLowerCase();
    const domain = sender.slice(at + 1).toLowerCase();
    if (domain === forwardingDomain) return sender.toLowerCase();
    const srs1 = /^srs1[=+-]([^=]+)=([^=]+)==(.+)$/i.exec(local);
    if (srs1) {
      // Already SRS1: keep the first forwarder and its opaque part, re-sign for us.
      const [, , first, rest] = srs1;
      return `SRS1=${this.#hash(`${first}==${rest}`)}=${first}==${rest}@${forwardingDomain}`;
    }
    const srs0 = /^srs0[=+-](.+)$/i.exec(local);
    if (srs0) {
      // An SRS0 address of another forwarder: its domain is the first forwarder.
      const rest = srs0[1];
      return `SRS1=${this.#hash(`${domain}==${rest}`)}=${domain}==${rest}@${forwardingDomain}`;
    }
    const tt = this.#timestamp();
    return `SRS0=${this.#hash(`${tt}=${domain}=${local}`)}=${tt}=${domain}=${local}@${forwardingDomain}`;
  }

  /**
   * Where a message to an SRS address goes back to: the original sender (SRS0) or the previous forwarder's
   * SRS0 address (SRS1). Null when the address is not ours, forged or too old.
   */
  reverse(localPart: string): string | null {
    const srs1 = /^srs1[=+-]([a-z2-7]{4})=([^=]+)==(.+)$/i.exec(localPart);
    if (srs1) {
      const [, hash, first, rest] = srs1;
      if (!this.#valid(hash, `${first}==${rest}`)) return null;
      return `SRS0=${rest}@${first}`;
    }
    const srs0 = /^srs0[=+-]([a-z2-7]{4})=([a-z2-7]{2})=([^=]+)=(.+)$/i.exec(localPart);
    if (!srs0) return null;
    const [, hash, tt, domain, local] = srs0;
    if (!this.#valid(hash, `${tt}=${domain}=${local}`)) return null;
    if (this.#ageDays(tt.toLowerCase()) > this.#maxAgeDays) return null;
    return `${local}@${domain}`;
  }

  #hash(data: string): string {
    const mac = createHmac('sha256', this.#key).update(data.toLowerCase()).digest();
    let out = '';
    for (let i = 0; i < 4; i++) out += BASE32[mac[i] & 31];
    return out;
  }

  #valid(hash: string, data: string): boolean {
    const expected = Buffer.from(this.#hash(data));
    const given = Buffer.from(hash.toLowerCase());
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  #day(): number {
    return Math.floor(this.#now() / DAY_MS) % TIMESTAMP_CYCLE;
  }

  #timestamp(): string {
    const day = this.#day();
    return BASE32[day >> 5] + BASE32[day & 31];
  }

  #ageDays(tt: string): number {
    const made = BASE32.indexOf(tt[0]) * 32 + BASE32.indexOf(tt[1]);
    return (this.#day() - made + TIMESTAMP_CYCLE) % TIMESTAMP_CYCLE;
  }
}
