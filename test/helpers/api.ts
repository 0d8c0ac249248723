import { tempDir } from './cleanup';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { App } from '../../src/app';
import { buildHttpApp } from '../../src/http/server';
import { silentLogger } from '../../src/log';

export const CLIENTS = {
  'acme-ci': { secret: 'acme-secret-0123456789abcdef', orgId: 'org_acme', roles: ['member'] },
  'acme-agent': { secret: 'acme-agent-secret-0123456789', orgId: 'org_acme', roles: ['agent'] },
  'globex-ci': { secret: 'globex-secret-0123456789abcd', orgId: 'org_globex', roles: ['member'] },
  operator: { secret: 'operator-secret-0123456789ab', orgId: '*', roles: ['admin'] },
  'acme-admin': { secret: 'acme-admin-secret-0123456789', orgId: 'org_acme', roles: ['admin'] },
};
export type ClientId = keyof typeof CLIENTS;

/** Writes the clients file and returns the env that points at it. */
export function apiEnv(extra: Record<string, string> = {}): Record<string, string> {
  const dir = tempDir('api-clients-');
  const file = join(dir, 'clients.json');
  writeFileSync(file, JSON.stringify(CLIENTS));
  return { API_CLIENTS_FILE: file, ...extra };
}

/** Port's runs API of a running App, on a free port, spoken to with fetch. */
export class ApiClient {
  private constructor(
    readonly server: FastifyInstance,
    readonly base: string,
  ) {}

  static async start(app: App): Promise<ApiClient> {
    const server = buildHttpApp(app, silentLogger());
    await server.listen({ port: 0, host: '127.0.0.1' });
    const { port } = server.server.address() as AddressInfo;
    return new ApiClient(server, `http://127.0.0.1:${port}`);
  }

  async token(client: ClientId): Promise<string> {
    const res = await this.call('POST', '/v1/auth/access_token', { body: { clientId: client, clientSecret: CLIENTS[client].secret } });
    if (res.status !== 200) throw new Error(`token for ${client}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.accessToken as string;
  }

  /** One request; `raw` sends a body as given (bad JSON, other content types). */
  async call(
    method: string,
    path: string,
    o: { token?: string; body?: unknown; raw?: string | Buffer; contentType?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    let body: string | Buffer | undefined;
    if (o.raw !== undefined) {
      body = o.raw;
      headers['content-type'] = o.contentType ?? 'application/json';
    } else if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(this.base + path, { method, headers, body });
    const text = await res.text();
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = { text };
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  /** As a client does: a fresh token, then the call. */
  async as(client: ClientId, method: string, path: string, body?: unknown) {
    return this.call(method, path, { token: await this.token(client), body });
  }

  async close(): Promise<void> {
    await this.server.close();
  }
}
