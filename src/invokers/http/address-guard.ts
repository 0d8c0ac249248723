import { lookup as dnsLookup, LookupAddress } from 'node:dns';
import { BlockList, isIP, LookupFunction } from 'node:net';
import { BackendError, ErrorCodes } from '../../errors';

/**
 * Addresses a webhook may not reach unless allowed: loopback, private,
 * link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
 * unspecified, multicast and reserved ranges.
 */
const FORBIDDEN = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) FORBIDDEN.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96]] as const) {
  FORBIDDEN.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
function unmap(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return { address: m[1]!, family: 'ipv4' };
  return { address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
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
    const { address: a, family } = unmap(address);
    if (this.allowed.check(a, family)) return null;
    if (!FORBIDDEN.check(a, family)) return null;
    return `${host} resolves to ${address}, a loopback/private/link-local address; allow it with WEBHOOK_ALLOWED_HOSTS`;
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
