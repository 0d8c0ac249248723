import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log';
import type { RouterMetrics } from '../metrics/metrics';

export interface HealthSource {
  readonly ready: boolean;
  readonly metrics: RouterMetrics;
}

/**
 * `/healthz` (the process answers), `/readyz` (consumer in its group and
 * producer connected), `/metrics` (Prometheus text format).
 */
export function startHttpServer(port: number, source: HealthSource, logger: Logger): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return send(res, 200, 'text/plain', 'ok\n');
    if (path === '/readyz') return source.ready ? send(res, 200, 'text/plain', 'ready\n') : send(res, 503, 'text/plain', 'not ready\n');
    if (path === '/metrics') {
      source.metrics.registry.metrics().then(
        (text) => send(res, 200, source.metrics.registry.contentType, text),
        (err: unknown) => send(res, 500, 'text/plain', String(err)),
      );
      return;
    }
    send(res, 404, 'text/plain', 'not found\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      logger.info({ port: (server.address() as AddressInfo).port }, 'http server listening (/healthz /readyz /metrics)');
      resolve(server);
    });
  });
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type });
  res.end(body);
}
