// IP addresses as the sending IPs are written and compared: canonical form (IPv6 compressed, lower case),
// family, and whether this machine has the address on one of its interfaces (so it can be bound to).
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** The canonical form of an IP address (IPv6 compressed, lower case), or null when it is not one. */
export function canonicalIp(input: string): string | null {
  const ip = input.trim();
  const family = isIP(ip);
  if (family === 4) return ip;
  if (family === 6) return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  return null;
}

export function familyOf(ip: string): 4 | 6 {
  return isIP(ip) === 6 ? 6 : 4;
}

/** The address as a number, for comparing it with a subnet. */
function toBigInt(ip: string): bigint {
  if (isIP(ip) === 4) return ip.split('.').reduce((n, octet) => (n << 8n) | BigInt(Number(octet)), 0n);
  const [head, tail] = ip.toLowerCase().split('::');
  const parts = (s: string | undefined) => (s ? s.split(':') : []);
  const left = parts(head);
  const right = parts(tail);
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((n, g) => (n << 16n) | BigInt(Number.parseInt(g || '0', 16)), 0n);
}

/**
 * Whether the address is on one of this machine's interfaces, or inside a subnet a local interface
 * holds as its own (Linux answers for all of 127.0.0.0/8 on `lo`). Addresses with an embedded IPv4
 * tail (::ffff:1.2.3.4) are not recognised as local.
 */
export function isLocalAddress(ip: string): boolean {
  const family = familyOf(ip);
  if (family === 6 && ip.includes('.')) return false;
  const wanted = toBigInt(ip);
  for (const list of Object.values(networkInterfaces())) {
    for (const address of list ?? []) {
      if ((address.family === 'IPv6' ? 6 : 4) !== family) continue;
      if (canonicalIp(address.address.split('%')[0]) === ip) return true;
      // Loopback answers for its whole subnet; other interfaces only for their own addresses.
      if (!address.internal || address.netmask.includes('.') !== (family === 4)) continue;
      const mask = toBigInt(address.netmask);
      if ((toBigInt(address.address.split('%')[0]) & mask) === (wanted & mask)) return true;
    }
  }
  return false;
}
