import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError, parse, unauthorized } from './errors';
import type { Principal } from './clients';
import type { RunsService } from './service';

const tokenBody = z.strictObject({ clientId: z.string().min(1).max(256), clientSecret: z.string().min(1).max(4096) });

/** A failed sign-in answers no sooner than this: guessing is slow even below the limit. */
const FAILURE_DELAY_MS = 200;

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
    const ip = request.ip;
    const blocked = runs.limiter.blockedFor(ip);
    if (blocked > 0) {
      throw new ApiError(429, 'too_many_requests', 'too many failed sign-ins from this address; try again later', {
        'retry-after': String(Math.ceil(blocked / 1000)),
      });
    }
    const body = parse(tokenBody, request.body);
    const principal = runs.clients.authenticate(body.clientId, body.clientSecret);
    if (!principal) {
      runs.limiter.fail(ip);
      runs.logger.warn({ clientId: body.clientId.slice(0, 64), ip }, 'failed sign-in');
      await new Promise((r) => setTimeout(r, FAILURE_DELAY_MS));
      throw new ApiError(401, 'unauthorized', 'invalid client credentials');
    }
    const accessToken = await runs.tokens.issue(principal);
    return reply.send({ ok: true, accessToken, expiresIn: runs.tokens.ttlSeconds, tokenType: 'Bearer' });
  });
}
