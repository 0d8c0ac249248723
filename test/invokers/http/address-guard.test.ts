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
