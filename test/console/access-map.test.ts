import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PeopleAccess } from '../../src/console/oidc/access-map';
import { ConfigError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { tempDir } from '../helpers/cleanup';

/** OIDC_ACCESS_FILE: groups to one org and its roles; reloaded on change; a bad file stops the start, a bad edit keeps the old rules. */
describe('PeopleAccess', () => {
  const rules = {
    'team-payments': { orgId: 'org_payments', roles: ['member'] },
    'payments-approvers': { orgId: 'org_payments', roles: ['approver'] },
    'team-search': { orgId: 'org_search', roles: ['member'] },
    'platform-admins': { orgId: '*', roles: ['admin'] },
  };

  it('maps groups to one org with the roles of every matching group of it; an every-org group wins; none: null', () => {
    const dir = tempDir('access-map-');
    const file = join(dir, 'access.json');
    writeFileSync(file, JSON.stringify(rules));
    const access = new PeopleAccess(file, silentLogger());
    expect(access.grant(['payments-approvers', 'team-payments', 'unrelated'])).toEqual({ orgId: 'org_payments', roles: ['member', 'approver'], groups: ['team-payments', 'payments-approvers'] });
    // Two orgs: the first in the file's order.
    expect(access.grant(['team-search', 'team-payments'])).toMatchObject({ orgId: 'org_payments', roles: ['member'] });
    expect(access.grant(['team-search', 'platform-admins'])).toMatchObject({ orgId: '*', roles: ['admin'] });
    expect(access.grant(['contractors'])).toBeNull();
    expect(access.grant([])).toBeNull();
  });

  it('is read again when it changes; a broken edit keeps the rules in force', () => {
    const dir = tempDir('access-map-');
    const file = join(dir, 'access.json');
    writeFileSync(file, JSON.stringify(rules));
    const access = new PeopleAccess(file, silentLogger());
    writeFileSync(file, JSON.stringify({ contractors: { orgId: 'org_search', roles: [] } }) + '\n');
    expect(access.grant(['contractors'])).toMatchObject({ orgId: 'org_search' });
    expect(access.grant(['team-payments'])).toBeNull();
    writeFileSync(file, '{ not json');
    expect(access.grant(['contractors'])).toMatchObject({ orgId: 'org_search' });
  });

  it('a file that is not valid stops the start, naming OIDC_ACCESS_FILE and the place', () => {
    const dir = tempDir('access-map-');
    const file = join(dir, 'access.json');
    writeFileSync(file, JSON.stringify({ admins: { orgId: '*', roles: 'admin' } }));
    expect(() => new PeopleAccess(file, silentLogger())).toThrow(ConfigError);
    expect(() => new PeopleAccess(file, silentLogger())).toThrow(/OIDC_ACCESS_FILE.*admins\.roles/);
  });
});
