// Outbound HTTP to addresses users supply (webhook URLs) must not reach this server's own network:
// loopback, private ranges, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
// multicast and other special-purpose ranges are refused, unless an operator allows the host by name
// or address. The check runs when a URL is saved and again inside every connection's DNS lookup, so a
// name that later resolves somewhere else (DNS rebinding) is refused at delivery time too.
import { lookup as systemLookup } from 'node:dns';
import { Resolver } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';

export class DestinationRefused extends Error {
  readonly code = 'destination_refused';
  /** The name did not resolve (rather than resolving to a refused address). */
  unresolved = false;
}

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT (also Alibaba's metadata 100.100.100.200)
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48],
  ['100::', 64], // discard
  ['2001:db8::', 32],
  ['fc00::', 7], // unique local (AWS metadata fd00:ec2::254)
  ['fe80::', 10], // link-local
  ['fec0::', 10],
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

function unresolved(message: string): DestinationRefused {
  const refused = new DestinationRefused(message);
  refused.unresolved = true;
  return refused;
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64), if any. */
function embeddedIpv4(address: string): string | null {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const hi = Number.parseInt(hex[1], 16);
    const lo = Number.parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return null;
}

/** True when `address` is loopback, private, link-local, metadata or otherwise not public. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4) return blocked.check(v4, 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return true;
}

export interface DestinationGuardOptions {
  /** Host names or IP addresses that may be reached although private (operator setting). */
  allowHosts: string[];
  /** `ip[:port]` resolvers; empty uses the system's (which also reads /etc/hosts). */
  dnsServers: string[];
}

export class DestinationGuard {
  readonly #allow: Set<string>;
  readonly #resolver: Resolver | null;

  constructor(options: DestinationGuardOptions) {
    this.#allow = new Set(options.allowHosts.map((h) => stripBrackets(h.toLowerCase())));
    if (options.dnsServers.length) {
      this.#resolver = new Resolver({ timeout: 3000, tries: 2 });
      this.#resolver.setServers(options.dnsServers);
    } else {
      this.#resolver = null;
    }
  }

  /** Throws DestinationRefused when the URL may not be called; resolves its host to check. */
  async check(url: URL): Promise<void> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new DestinationRefused('only http and https URLs can be called');
    }
    if (url.username || url.password) throw new DestinationRefused('URLs may not carry credentials');
    await this.checkHost(url.hostname);
  }

  /** Throws DestinationRefused when the host (a name or an address) may not be reached. */
  async checkHost(hostname: string): Promise<void> {
    const host = stripBrackets(hostname.toLowerCase());
    if (this.#allow.has(host)) return;
    const addresses = isIP(host) ? [host] : await this.resolve(host);
    this.#refusePrivate(host, addresses);
  }

  /** Resolves a name to every A and AAAA address; throws DestinationRefused when there are none. */
  async resolve(host: string): Promise<string[]> {
    if (host === 'localhost' || host.endsWith('.localhost')) {
      throw new DestinationRefused(`${host} is this machine`);
    }
    if (!this.#resolver) {
      return new Promise((resolve, reject) =>
        systemLookup(host, { all: true }, (err, entries) =>
          err
            ? reject(unresolved(`${host} does not resolve (${err.code})`))
            : resolve(entries.map((e) => e.address)),
        ),
      );
    }
    const settled = await Promise.allSettled([this.#resolver.resolve4(host), this.#resolver.resolve6(host)]);
    const addresses = settled.flatMap((s) => (s.status === 'fulfilled' ? s.value : []));
    if (addresses.length === 0) {
      const reason = settled.find((s) => s.status === 'rejected')?.reason as
        | NodeJS.ErrnoException
        | undefined;
      throw unresolved(`${host} does not resolve (${reason?.code ?? 'no addresses'})`);
    }
    return addresses;
  }

  #refusePrivate(host: string, addresses: string[]): void {
    const refused = addresses.find((a) => isPrivateAddress(a) && !this.#allow.has(a.toLowerCase()));
    if (refused !== undefined) {
      throw new DestinationRefused(
        refused === host
          ? `${host} is a private, loopback or link-local address`
          : `${host} resolves to ${refused}, a private, loopback or link-local address`,
      );
    }
  }

  /**
   * A `lookup` for http(s) agents: connections go only to the addresses that passed the check, so the
   * name cannot be re-resolved elsewhere between check and connect.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const host = stripBrackets(hostname.toLowerCase());
    const resolved = isIP(host) ? Promise.resolve([host]) : this.resolve(host);
    resolved
      .then((addresses) => {
        if (!this.#allow.has(host)) this.#refusePrivate(host, addresses);
        const family = options.family === 6 ? 6 : options.family === 4 ? 4 : 0;
        const usable = addresses.filter((a) => family === 0 || isIP(a) === family);
        if (usable.length === 0) throw new DestinationRefused(`${host} has no IPv${family} address`);
        if (options.all)
          callback(
            null,
            usable.map((address) => ({ address, family: isIP(address) })),
          );
        else callback(null, usable[0], isIP(usable[0]));
      })
      .catch((err: Error) => callback(err as NodeJS.ErrnoException, '', 0));
  };
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
