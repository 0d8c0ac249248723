import { agentLedgerPlace } from '../../src/agent/agent';
import { loadConfig } from '../../src/config/config';

describe("where the agent's call ledger is", () => {
  test('in DATA_DIR, one file per org (its id made a file name), named by DATA_DIR', () => {
    expect(agentLedgerPlace(loadConfig({ DATA_DIR: '/data' }), 'org_a')).toEqual({ path: '/data/agent-calls-org_a.db', variable: 'DATA_DIR' });
    expect(agentLedgerPlace(loadConfig({}), 'org/../x y').path).toBe('.data/agent-calls-org_.._x_y.db');
  });

  test('AGENT_LEDGER_PATH names the file, and is the variable a problem with it names', () => {
    expect(agentLedgerPlace(loadConfig({ DATA_DIR: '/data', AGENT_LEDGER_PATH: '/var/lib/agent/calls.db' }), 'org_a')).toEqual({ path: '/var/lib/agent/calls.db', variable: 'AGENT_LEDGER_PATH' });
  });
});
