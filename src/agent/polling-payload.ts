import { toPortMessage } from '../codec/port-message';
import { pythonJson } from '../model/lossless-json';
import type { FrozenRun } from '../model/run';

/**
 * What `POST /v1/actions/runs/claim-pending` hands Port's agent for a run
 * (port-agent's polling streamer reads `type`, `url`, `agent`,
 * `synchronized`, `method`, `headers` and the run message in `body`).
 * Over HTTP the agent checks no signature: the claim is authenticated by
 * the agent's own token instead.
 */
export function pollingPayload(run: FrozenRun): string {
  const m = run.invocationMethod;
  return pythonJson({
    type: m.type,
    agent: true,
    url: typeof m.url === 'string' ? m.url : '',
    method: typeof m.method === 'string' ? m.method : 'POST',
    synchronized: m.synchronized === true,
    headers: m.headers && typeof m.headers === 'object' && !Array.isArray(m.headers) ? m.headers : {},
    body: toPortMessage(run),
  });
}
