import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request a fake server received, for assertions. */
export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

/** A canned answer; queued ones are served before the normal behaviour. */
export interface Scripted {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait this long before answering (a slow or hanging backend). */
  delayMs?: number;
}

export type Handler = (req: Recorded) => Scripted | Promise<Scripted>;

/**
 * A small real HTTP server on loopback for the development fakes (GitHub,
 * GitLab, webhook receivers): routes by method and path pattern, records
 * every request, and can be told to fail the next calls.
 */
export class FakeHttpServer {
  readonly requests: Recorded[] = [];
  private readonly routes: { method: string; pattern: RegExp; handler: (req: Recorded, m: RegExpMatchArray) => Scripted | Promise<Scripted> }[] = [];
  private readonly queue: { match: RegExp; reply: Scripted }[] = [];
  private server: Server | null = null;
  private readonly sockets = new Set<import('node:net').Socket>();
  url = '';

  route(method: string, pattern: RegExp, handler: (req: Recorded, m: RegExpMatchArray) => Scripted | Promise<Scripted>): this {
    this.routes.push({ method, pattern, handler });
    return this;
  }

  /** The next requests whose path matches get these answers, in order. */
  failNext(match: RegExp, ...replies: Scripted[]): void {
    for (const reply of replies) this.queue.push({ match, reply });
  }

  async start(port = 0): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const rec: Recorded = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      at: Date.now(),
    };
    this.requests.push(rec);
    let reply: Scripted = { status: 404, body: { message: 'Not Found' } };
    const queued = this.queue.findIndex((q) => q.match.test(rec.path));
    if (queued >= 0) {
      reply = this.queue[queued]!.reply;
      this.queue.splice(queued, 1);
    } else {
      for (const r of this.routes) {
        const m = rec.path.match(r.pattern);
        if (m && r.method === rec.method) {
          reply = await r.handler(rec, m);
          break;
        }
      }
    }
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs).unref());
    if (res.destroyed) return;
    const body = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
    res.end(body);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
