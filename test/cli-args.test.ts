import { parseArgs } from '../src/cli-args';
import { ErrorCodes } from '../src/errors';

describe('the command line (node:util parseArgs, strict)', () => {
  it('reads each command’s own options, with = or a separate value', () => {
    expect(parseArgs(['trigger', '--type', 'WEBHOOK', '--count=3', '--sync', '--url', 'http://x/'])).toEqual({ _: ['trigger'], type: 'WEBHOOK', count: '3', sync: true, url: 'http://x/' });
    expect(parseArgs(['runs', 'logs', 'r_1', '--follow', '--json'])).toEqual({ _: ['runs', 'logs', 'r_1'], follow: true, json: true });
    expect(parseArgs(['tail', '--from-now'])).toEqual({ _: ['tail'], 'from-now': true });
  });

  it('refuses an option the command does not take, and one missing its value, naming it', () => {
    expect(() => parseArgs(['start', '--org', 'x'])).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE, message: expect.stringContaining("'--org'") }));
    expect(() => parseArgs(['trigger', '--bogus'])).toThrow(/Unknown option '--bogus' \(action-router trigger/);
    expect(() => parseArgs(['agent', '--org'])).toThrow(/'--org <value>' argument missing/);
    // A boolean flag takes no value.
    expect(() => parseArgs(['demo', '--exit=yes'])).toThrow(/--exit/);
  });

  it('help and unknown commands reach the usage', () => {
    expect(parseArgs([])._).toEqual(['help']);
    expect(parseArgs(['--help'])._).toEqual(['help']);
    expect(parseArgs(['frob', '--x'])._).toEqual(['frob']);
  });
});
