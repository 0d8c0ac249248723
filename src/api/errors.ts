import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ErrorCodes, RouterError, StoreUnavailableError } from '../errors';

/**
 * A refused request, answered in Port's error envelope:
 * `{"ok": false, "error": "<error>", "message"}`. The envelope's codes are
 * stable; clients branch on the HTTP status and may log the code.
 */
export class ApiError extends RouterError {
  constructor(
    readonly statusCode: number,
    /** The envelope's `error` (`not_found`, `invalid_request`...). */
    readonly error: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** More fields of the envelope (`details`: each field's problem). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(ErrorCodes.REQUEST_REFUSED, message);
    this.name = 'ApiError';
  }
}

export const unauthorized = (message = 'a valid Bearer token is required') => new ApiError(401, 'unauthorized', message);
export const notFound = (what = 'run') => new ApiError(404, 'not_found', `${what} not found`);
export const invalid = (message: string) => new ApiError(422, 'invalid_request', message);

/** Parses a body or query with `schema`; a mismatch is Port's 422 naming the field. */
export function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.length ? issue.path.join('.') : 'body';
  throw invalid(`${where}: ${issue.message}`);
}

/** Fastify's own errors (body limits, bad JSON, content types) in Port's envelope. */
export function errorHandler(err: FastifyError | ApiError, request: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof ApiError) {
    void reply.code(err.statusCode).headers(err.headers).send({ ok: false, error: err.error, message: err.message, ...err.extra });
    return;
  }
  // The store's own failures (a query past its budget, a file being replaced) are passing: 503, try again.
  const sqlite = typeof (err as { code?: unknown }).code === 'string' && String((err as { code: string }).code).startsWith('SQLITE_');
  if (err instanceof StoreUnavailableError || sqlite) {
    request.log.warn({ err: err.message }, 'run store unavailable for a request');
    void reply.code(503).header('retry-after', '1').send({ ok: false, error: 'store_unavailable', message: err instanceof StoreUnavailableError ? err.message : 'the run store cannot answer now; try again' });
    return;
  }
  const status = err.statusCode ?? 500;
  const code =
    err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
      ? 'payload_too_large'
      : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? 'unsupported_media_type'
        : // Only the body parser's own errors are the client's bad JSON; a SyntaxError anywhere else is ours (500).
          err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
          ? 'invalid_json'
          : status >= 500
            ? 'internal_error'
            : 'bad_request';
  if (status >= 500) request.log.error({ err }, 'request failed');
  void reply.code(status).send({ ok: false, error: code, message: status >= 500 ? 'internal error' : err.message });
}
