import { Writable } from 'node:stream';
import { createLogger } from '../../src/log';

describe('createLogger', () => {
  it('redacts secrets wherever the known paths put them', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger('info', sink).child({ runId: 'r_1' });
    logger.info(
      { token: 'tok-123', request: { headers: { authorization: 'Bearer gh-abc', 'x-other': 'visible' } }, github: { privateKey: '-----BEGIN' } },
      'calling',
    );
    const out = lines.join('');
    expect(out).toContain('"runId":"r_1"');
    expect(out).toContain('visible');
    for (const secret of ['tok-123', 'gh-abc', '-----BEGIN']) expect(out).not.toContain(secret);
    expect(out).toContain('[redacted]');
  });
});
