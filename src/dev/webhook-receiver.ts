import { verifyPortSignature } from '../invokers/sign';
import { FakeHttpServer, Recorded, Scripted } from './http-fake';

export interface ReceivedRun {
  request: Recorded;
  runId: string | undefined;
  signatureOk: boolean;
}

/**
 * A webhook backend on loopback. It checks Port's signature with the
 * exported helper (401 when it does not verify) and answers as the query
 * says: `?status=NNN`, `?delay=MS`. `onRun` sees every verified call.
 */
export class WebhookReceiver extends FakeHttpServer {
  readonly received: ReceivedRun[] = [];
  onRun: ((run: ReceivedRun) => void) | null = null;

  constructor(private readonly secret?: string) {
    super();
    for (const method of ['POST', 'PUT', 'PATCH', 'GET', 'DELETE']) this.route(method, /.*/, (r) => this.answer(r));
  }

  private answer(req: Recorded): Scripted {
    const timestamp = req.headers['x-port-timestamp'] as string | undefined;
    const signature = req.headers['x-port-signature'] as string | undefined;
    // Port's agent (and `action-router agent`) signs the compact form of the body it sends spaced.
    const signatureOk = this.secret ? verifyPortSignature(this.secret, req.body, timestamp, signature, { compactBody: true }).ok : true;
    const runId = (req.headers['x-run-id'] as string | undefined) ?? runIdInBody(req.body);
    const run = { request: req, runId, signatureOk };
    this.received.push(run);
    if (!signatureOk) return { status: 401, body: { error: 'invalid signature' } };
    this.onRun?.(run);
    const status = Number(req.query.get('status') ?? 200);
    const delayMs = Number(req.query.get('delay') ?? 0);
    return { status, delayMs, body: { ok: status < 400, runId } };
  }
}

/** The run id of a Port run message sent as the body (an agent's default request carries no X-Run-Id). */
function runIdInBody(body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { context?: { runId?: unknown } }).context?.runId;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}
