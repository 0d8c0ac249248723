import { connect } from 'node:net';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { buildHttpApp } from '../../src/http/server';
import { createLogger } from '../../src/log';
import { RouterMetrics } from '../../src/metrics/metrics';

/** At LOG_LEVEL=trace the HTTP server logs what it could not parse, never the bytes (tokens, secrets, cookies). */
describe('HTTP parse errors at trace level', () => {
  test.each([
    ['a bad header line', 'GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET-TOKEN-1\r\nBad Header\r\n\r\n'],
    ['a bad method', 'G\u0001T /v1/auth/access_token HTTP/1.1\r\nCookie: ar_session=SECRET-TOKEN-1\r\n\r\n'],
    ['a bad content length', 'POST /v1/auth/access_token HTTP/1.1\r\nHost: x\r\nContent-Length: x1\r\n\r\n{"clientSecret":"SECRET-TOKEN-1"}'],
  ])('%s', async (_what, raw) => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const app = buildHttpApp({ ready: true, metrics: new RouterMetrics() }, createLogger('trace', sink));
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = app.server.address() as AddressInfo;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.end(raw));
        let text = '';
        socket.on('data', (d) => (text += d.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 4\d\d/);
      const out = lines.join('');
      // The error was logged (the check is on a real line), without the request's bytes in any form.
      expect(out).toMatch(/client error|parse|HPE_/i);
      expect(out).not.toContain('SECRET-TOKEN-1');
      expect(out).not.toContain('rawPacket');
      const bytes = [...Buffer.from('SECRET')].join(',');
      expect(out).not.toContain(bytes);
    } finally {
      await app.close();
    }
  });
});
