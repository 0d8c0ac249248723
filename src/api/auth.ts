import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError, parse, unauthorized } from './errors';
import type { Principal } from '../access/principal';
import type { RunsService } from './service';
import type { Verdict } from './sign-in-guard';

const tokenBody = z.strictObject({ clientId: z.string().min(1).max(256), clientSecret: z.string().min(1).max(4096) });

/** The principal of a request's Bearer token: undefined without one, null for a bad or expired one. */
export async function bearerPrincipal(runs: RunsService, request: FastifyRequest): Promise<Principal | null | undefined> {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match ? runs.tokens.verify(match[1]!) : null;
}

/** The principal of a request's Bearer token; 401 otherwise. */
export async function principalOf(runs: RunsService, request: FastifyRequest): Promise<Principal> {
  const principal = await bearerPrincipal(runs, request);
  if (principal === undefined) throw unauthorized();
  if (!principal) throw unauthorized('the token is invalid or expired');
  return principal;
}

/** `POST /v1/auth/access_token`: client credentials for a Bearer token. */
export function authRoutes(app: FastifyInstance, runs: RunsService): void {
  app.post('/v1/auth/access_token', async (request, reply) => {
    const body = parse(tokenBody, request.body);
    // The secret is checked first: a right one is never refused, whatever was guessed before.
    const principal = runs.clients.authenticate(body.clientId, body.clientSecret);
    if (!principal) {
      const verdict = await failedSignIn(runs, 'api', request.ip, body.clientId);
      if (verdict.status === 429) {
        throw new ApiError(429, 'too_many_requests', 'too many failed sign-ins; try again later', {
          'retry-after': String(Math.ceil(verdict.retryAfterMs / 1000)),
        });
      }
      throw new ApiError(401, 'unauthorized', 'invalid client credentials');
    }
    const accessToken = await runs.tokens.issue(principal);
    return reply.send({ ok: true, accessToken, expiresIn: runs.tokens.ttlSeconds, tokenType: 'Bearer' });
  });
}

/**
 * Counts a failed sign-in (API or console), logs it and waits the guard's
 * delay; says whether to answer 401 or 429.
 */
export async function failedSignIn(runs: RunsService, route: 'api' | 'console', ip: string, clientId: string): Promise<Verdict> {
  const verdict = runs.guard.failed(ip, clientId);
  const client = clientId.slice(0, 64);
  runs.signInFailures.inc({ route, limited: String(verdict.status === 429) });
  runs.logger.warn({ clientId: client, ip, route, limited: verdict.status === 429 }, 'failed sign-in');
  if (verdict.clientCapReached) {
    runs.logger.error({ clientId: client, perMinute: runs.guard.options.perClient }, 'a client\'s failed sign-ins passed its cap: someone is guessing its secret');
  }
  await new Promise((r) => setTimeout(r, verdict.delayMs));
  return verdict;
}
