import { AddressGuard } from '../../../src/invokers/http/address-guard';

describe('AddressGuard', () => {
  const guard = new AddressGuard([]);

  it.each([
    '127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '0.0.0.0', '100.64.0.1',
    '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:169.254.169.254',
  ])('refuses %s', (address) => {
    expect(guard.refusal('target.example', address)).toMatch(/WEBHOOK_ALLOWED_HOSTS/);
  });

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700::1111'])('allows the public address %s', (address) => {
    expect(guard.refusal('target.example', address)).toBeNull();
  });

  /**
   * IANA's special-purpose address registries (IPv4 and IPv6), an entry a
   * row: its first and last address, and whether the guard refuses it.
   * Not globally reachable: refused. Globally reachable: allowed, except
   * protocol anycast inside a refused block (192.0.0.9-10, 2001::/23's
   * AMT, AS112, ORCHIDv2, DRIP), where no webhook lives.
   */
  const REGISTRY: [string, string, string, boolean][] = [
    ['0.0.0.0/8', '0.0.0.0', '0.255.255.255', true],
    ['10.0.0.0/8', '10.0.0.0', '10.255.255.255', true],
    ['100.64.0.0/10', '100.64.0.0', '100.127.255.255', true],
    ['127.0.0.0/8', '127.0.0.0', '127.255.255.255', true],
    ['169.254.0.0/16', '169.254.0.0', '169.254.255.255', true],
    ['172.16.0.0/12', '172.16.0.0', '172.31.255.255', true],
    ['192.0.0.0/24', '192.0.0.0', '192.0.0.255', true],
    ['192.0.0.170/32 (NAT64 discovery)', '192.0.0.170', '192.0.0.171', true],
    ['192.0.2.0/24 (TEST-NET-1)', '192.0.2.0', '192.0.2.255', true],
    ['192.31.196.0/24 (AS112, global)', '192.31.196.0', '192.31.196.255', false],
    ['192.52.193.0/24 (AMT, global)', '192.52.193.0', '192.52.193.255', false],
    ['192.88.99.0/24 (deprecated 6to4 relay)', '192.88.99.0', '192.88.99.255', true],
    ['192.168.0.0/16', '192.168.0.0', '192.168.255.255', true],
    ['192.175.48.0/24 (AS112 direct delegation, global)', '192.175.48.0', '192.175.48.255', false],
    ['198.18.0.0/15 (benchmarking)', '198.18.0.0', '198.19.255.255', true],
    ['198.51.100.0/24 (TEST-NET-2)', '198.51.100.0', '198.51.100.255', true],
    ['203.0.113.0/24 (TEST-NET-3)', '203.0.113.0', '203.0.113.255', true],
    ['224.0.0.0/4 (multicast)', '224.0.0.0', '239.255.255.255', true],
    ['240.0.0.0/4 (reserved, broadcast)', '240.0.0.0', '255.255.255.255', true],
    ['::/128, ::1/128 and the rest of ::/96 (IPv4-compatible)', '::', '::ffff:ffff', true],
    ['64:ff9b:1::/48 (local-use NAT64)', '64:ff9b:1::', '64:ff9b:1:ffff:ffff:ffff:ffff:ffff', true],
    ['100::/64 (discard-only)', '100::', '100::ffff:ffff:ffff:ffff', true],
    ['100:0:0:1::/64 (dummy prefix)', '100:0:0:1::', '100::1:ffff:ffff:ffff:ffff', true],
    ['2001::/32 (Teredo)', '2001::', '2001:0:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['2001:1::1/128 (PCP anycast)', '2001:1::1', '2001:1::3', true],
    ['2001:2::/48 (benchmarking)', '2001:2::', '2001:2:0:ffff:ffff:ffff:ffff:ffff', true],
    ['2001:3::/32 (AMT)', '2001:3::', '2001:3:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['2001:20::/28 (ORCHIDv2)', '2001:20::', '2001:2f:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['2001:30::/28 (DRIP)', '2001:30::', '2001:3f:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['the rest of 2001::/23 (IETF protocol assignments)', '2001:100::', '2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['2001:db8::/32 (documentation)', '2001:db8::', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['2620:4f:8000::/48 (AS112 direct delegation, global)', '2620:4f:8000::', '2620:4f:8000:ffff:ffff:ffff:ffff:ffff', false],
    ['3fff::/20 (documentation)', '3fff::', '3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['5f00::/16 (SRv6 SIDs)', '5f00::', '5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['fc00::/7 (unique local)', 'fc00::', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['fe80::/10 (link-local)', 'fe80::', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['fec0::/10 (deprecated site-local)', 'fec0::', 'feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['ff00::/8 (multicast)', 'ff00::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', true],
  ];
  it.each(REGISTRY)('registry: %s, %s to %s, refused: %s', (_entry, first, last, refused) => {
    for (const address of [first, last]) {
      const refusal = guard.refusal('target.example', address);
      expect({ address, refused: refusal !== null }).toEqual({ address, refused });
    }
  });

  /** A blocked IPv4 address in every IPv6 form that carries or translates one. */
  const embeddings = (v4: string): string[] => {
    const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
    const hi = ((a << 8) | b).toString(16);
    const lo = ((c << 8) | d).toString(16);
    return [
      `::ffff:${v4}`, `::ffff:${hi}:${lo}`, `0:0:0:0:0:ffff:${hi}:${lo}`, // IPv4-mapped
      `::${v4}`, `::${hi}:${lo}`, // IPv4-compatible
      `::ffff:0:${v4}`, `::ffff:0:${hi}:${lo}`, // IPv4-translated
      `64:ff9b::${v4}`, `64:ff9b::${hi}:${lo}`, // NAT64, well-known prefix
      `64:ff9b:1:${hi}:${lo}::`, // NAT64, local-use
      `2002:${hi}:${lo}::1`, `2002:${hi}:${lo}:ffff::`, // 6to4
    ];
  };
  it.each(['127.0.0.1', '10.0.0.1', '169.254.169.254', '192.168.1.1', '100.64.0.1', '172.16.5.4', '0.0.0.0'])(
    'refuses %s in every IPv6 form that embeds or translates it',
    (v4) => {
      for (const address of embeddings(v4)) expect({ address, refusal: guard.refusal('target.example', address) }).toEqual({ address, refusal: expect.stringMatching(/WEBHOOK_ALLOWED_HOSTS/) });
    },
  );

  it.each(['64:ff9b::8.8.8.8', '64:ff9b::808:808', '2002:808:808::1', '::ffff:8.8.8.8', '2001:4860:4860::8888', '192.0.1.1', '198.20.0.1'])(
    'allows %s (a public address, or one that translates one)',
    (address) => {
      expect(guard.refusal('target.example', address)).toBeNull();
    },
  );

  it('ignores a zone id and refuses what is not an address', () => {
    expect(guard.refusal('target.example', 'fe80::1%eth0')).not.toBeNull();
    expect(guard.refusal('target.example', 'not-an-address')).not.toBeNull();
  });

  it('lets the allowlist open hosts and CIDRs, and nothing more', () => {
    const g = new AddressGuard(['localhost', '10.20.0.0/16', '::1']);
    expect(g.refusal('localhost', '127.0.0.1')).toBeNull();
    expect(g.refusal('internal.example', '10.20.3.4')).toBeNull();
    expect(g.refusal('internal.example', '10.21.3.4')).not.toBeNull();
    expect(g.refusal('x', '::1')).toBeNull();
    expect(g.refusal('x', '127.0.0.1')).not.toBeNull();
  });

  it('vets the address at connection time (a rebinding name is refused)', async () => {
    const lookup = guard.lookupFor('localhost');
    const err = await new Promise<Error | null>((resolve) =>
      (lookup as unknown as (h: string, o: object, cb: (e: Error | null) => void) => void)('localhost', {}, (e) => resolve(e)),
    );
    expect(err?.message).toMatch(/loopback\/private\/link-local/);
  });
});
