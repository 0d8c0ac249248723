import Fastify from 'fastify';
import { errorHandler } from '../../src/api/errors';

/** Fastify's errors in Port's envelope: the client's bad JSON is 400, a SyntaxError of our own is 500. */
describe('errorHandler', () => {
  const app = Fastify({ logger: false });
  app.setErrorHandler(errorHandler);
  app.post('/echo', async (request) => ({ ok: true, got: request.body }));
  app.get('/bug', async () => JSON.parse('{"stored": ') as unknown);
  let base = '';
  beforeAll(async () => {
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());
  const ask = async (method: string, path: string, payload?: string) => {
    const res = await fetch(base + path, { method, ...(payload === undefined ? {} : { body: payload, headers: { 'content-type': 'application/json' } }) });
    return { statusCode: res.status, body: (await res.json()) as { error?: string } };
  };

  it('answers a body that is not JSON with 400 invalid_json', async () => {
    for (const payload of ['{"a": ', '{]', 'nope']) {
      const res = await ask('POST', '/echo', payload);
      expect([payload, res.statusCode, res.body.error]).toEqual([payload, 400, 'invalid_json']);
    }
    const empty = await ask('POST', '/echo', '');
    expect([empty.statusCode, empty.body.error]).toEqual([400, 'invalid_json']);
  });

  it('answers a SyntaxError thrown by a route with 500, without its message', async () => {
    const res = await ask('GET', '/bug');
    expect(res.statusCode).toBe(500);
    expect(res.body).toEqual({ ok: false, error: 'internal_error', message: 'internal error' });
  });
});
