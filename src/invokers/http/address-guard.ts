import { lookup as dnsLookup, LookupAddress } from 'node:dns';
import { BlockList, isIP, LookupFunction } from 'node:net';
import { BackendError, ErrorCodes } from '../../errors';

/**
 * IPv4 ranges a webhook may not reach unless allowed: every range IANA's
 * IPv4 special-purpose registry marks not globally reachable (loopback,
 * private, link-local with cloud metadata at 169.254.169.254,
 * carrier-grade NAT, documentation, benchmarking, reserved, broadcast),
 * the deprecated 6to4 relay anycast, and multicast.
 */
const FORBIDDEN_V4: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
];

/**
 * IPv6 ranges refused as they are: the non-global ranges of IANA's IPv6
 * special-purpose registry, deprecated site-local, and multicast. Forms
 * that carry an IPv4 address (IPv4-mapped, IPv4-translated, NAT64 at
 * 64:ff9b::/96, 6to4) are judged by that address instead; IPv4-compatible
 * addresses (::/96, deprecated) and local-use NAT64 (64:ff9b:1::/48, where
 * the IPv4 part's position depends on the prefix a network chose) are
 * refused whole.
 */
const FORBIDDEN_V6: readonly (readonly [string, number])[] = [
  ['::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['100:0:0:1::', 64], ['2001::', 23], ['2001:db8::', 32], ['3fff::', 20],
  ['5f00::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
];

const V4 = new BlockList();
for (const [net, prefix] of FORBIDDEN_V4) V4.addSubnet(net, prefix, 'ipv4');
const V6 = new BlockList();
for (const [net, prefix] of FORBIDDEN_V6) V6.addSubnet(net, prefix, 'ipv6');

/** The 16 bytes of an IPv6 address (a trailing dotted quad allowed), or null when it is not one. */
export function ipv6Bytes(address: string): Uint8Array | null {
  if (isIP(address) !== 6) return null;
  const groups = (part: string): number[] => {
    const out: number[] = [];
    if (part === '') return out;
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const halves = address.split('::');
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

const zero = (b: Uint8Array, from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
const dotted = (b: Uint8Array, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** The IPv4 address an IPv6 address stands for or carries, when it is of a form that does. */
export function embeddedIpv4(b: Uint8Array): string | null {
  // ::ffff:a.b.c.d (IPv4-mapped) and ::ffff:0:a.b.c.d (IPv4-translated)
  if (zero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return dotted(b, 12);
  if (zero(b, 0, 8) && b[8] === 0xff && b[9] === 0xff && zero(b, 10, 12)) return dotted(b, 12);
  // 64:ff9b::a.b.c.d (NAT64, the well-known prefix)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(b, 4, 12)) return dotted(b, 12);
  // 2002:AABB:CCDD::/48 (6to4)
  if (b[0] === 0x20 && b[1] === 0x02) return dotted(b, 2);
  return null;
}

/** Whether `address` (IPv4 or IPv6, no zone) is one a webhook may not reach. */
function forbidden(address: string): boolean {
  if (isIP(address) === 4) return V4.check(address, 'ipv4');
  const bytes = ipv6Bytes(address);
  if (!bytes) return true;
  const v4 = embeddedIpv4(bytes);
  if (v4 !== null) return V4.check(v4, 'ipv4');
  return V6.check(address, 'ipv6');
}

/**
 * Decides which resolved addresses a webhook may connect to. The check is
 * made on the address the connection will use (inside the socket's DNS
 * lookup), so a name that resolves differently the second time (DNS
 * rebinding) cannot slip past it.
 */
export class AddressGuard {
  private readonly hosts = new Set<string>();
  private readonly allowed = new BlockList();

  /** Entries: host names, IP addresses, or CIDRs (10.0.0.0/8, fd00::/8). */
  constructor(allow: readonly string[]) {
    for (const entry of allow) {
      const [net, bits] = entry.split('/');
      const family = isIP(net ?? '');
      if (family && bits !== undefined) this.allowed.addSubnet(net!, Number(bits), family === 6 ? 'ipv6' : 'ipv4');
      else if (family) this.allowed.addAddress(net!, family === 6 ? 'ipv6' : 'ipv4');
      else this.hosts.add(entry.toLowerCase());
    }
  }

  /** Null when `address` may be reached for `host`, else why not. */
  refusal(host: string, address: string): string | null {
    if (this.hosts.has(host.toLowerCase())) return null;
    const plain = address.split('%')[0]!;
    const family = isIP(plain);
    if (family && this.allowed.check(plain, family === 6 ? 'ipv6' : 'ipv4')) return null;
    if (!forbidden(plain)) return null;
    return `${host} resolves to ${address}, a loopback/private/link-local or otherwise non-global address; allow it with WEBHOOK_ALLOWED_HOSTS`;
  }

  /** A socket lookup that refuses forbidden addresses for `host`. */
  lookupFor(host: string): LookupFunction {
    return ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
      dnsLookup(hostname, { all: true }, (err, addresses: LookupAddress[]) => {
        if (err) return callback(err);
        const ok = addresses.filter((a) => this.refusal(host, a.address) === null);
        if (ok.length === 0) {
          const reason = this.refusal(host, addresses[0]?.address ?? '') ?? `${host} did not resolve`;
          return callback(new BackendError(ErrorCodes.TARGET_FORBIDDEN, reason));
        }
        if (options.all) return callback(null, ok);
        callback(null, ok[0]!.address, ok[0]!.family);
      });
    }) as unknown as LookupFunction;
  }
}
