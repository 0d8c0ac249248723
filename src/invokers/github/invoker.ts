import { portMessageJson, toPortMessage } from '../../codec/port-message';
import { BackendError, ErrorCodes, RouterError, describeError } from '../../errors';
import type { Json, JsonObject } from '../../model/json';
import type { FrozenRun } from '../../model/run';
import { HttpResponse, bodyObject, httpRequest, retryAfterMs, statusError } from '../../net/http-client';
import type { InvocationContext, InvocationOutcome, Invoker } from '../invoker';
import { followJob } from '../follow';
import { AbortedError, sleep, withRetry } from '../../net/retry';
import { GithubAuth } from './auth';
import type { GithubConfig } from './config';

/** GitHub's limit on workflow_dispatch inputs (it was 10 before 2025). */
export const MAX_DISPATCH_INPUTS = 25;

export interface GithubTarget {
  owner: string;
  repo: string;
  workflow: string;
  ref: string;
  inputs: Record<string, Json>;
  report: boolean;
}

interface WorkflowRun {
  id: number;
  name?: string | null;
  display_title?: string | null;
  status: string;
  conclusion: string | null;
  html_url: string;
  created_at: string;
  event?: string;
}

/** Builds the dispatch from Port's GITHUB invocation method (PORT-REFERENCE.md, GITHUB). */
export function githubTarget(run: FrozenRun): GithubTarget | RouterError {
  const m = run.invocationMethod;
  const invalid = (msg: string) => new BackendError(ErrorCodes.INVOCATION_INVALID, msg);
  for (const key of ['org', 'repo', 'workflow'] as const) {
    if (typeof m[key] !== 'string' || m[key] === '') return invalid(`GITHUB invocation method needs "${key}"`);
  }
  const given = (m.workflowInputs && typeof m.workflowInputs === 'object' && !Array.isArray(m.workflowInputs) ? m.workflowInputs : {}) as JsonObject;
  const { ref, ...fixed } = given;
  const inputs: Record<string, Json> = {};
  const put = (k: string, v: Json) => {
    // Dispatch inputs are strings, numbers or booleans; structures travel as JSON.
    inputs[k] = v !== null && typeof v === 'object' ? JSON.stringify(v) : v;
  };
  for (const [k, v] of Object.entries(fixed)) put(k, v);
  if (m.omitUserInputs !== true) for (const [k, v] of Object.entries(run.properties)) if (v !== null) put(k, v);
  if (m.omitPayload !== true) inputs.port_payload = portMessageJson(toPortMessage(run), run);
  inputs.port_context = JSON.stringify({ runId: run.runId, orgId: run.orgId, action: run.action, blueprint: run.blueprint, entity: run.entityIdentifier });
  const count = Object.keys(inputs).length;
  if (count > MAX_DISPATCH_INPUTS) {
    return invalid(
      `GitHub accepts at most ${MAX_DISPATCH_INPUTS} workflow inputs; this dispatch has ${count} (${Object.keys(inputs).join(', ')}). ` +
        'Set omitUserInputs and read the inputs from port_payload.',
    );
  }
  return {
    owner: m.org as string,
    repo: m.repo as string,
    workflow: m.workflow as string,
    ref: typeof ref === 'string' && ref ? ref : 'main',
    inputs,
    report: m.reportWorkflowStatus !== false,
  };
}

/**
 * GITHUB runs: a workflow_dispatch, then (with reportWorkflowStatus) the
 * workflow run is found and followed to its conclusion in the background.
 * Finding the run: the dispatch asks GitHub for the run's id
 * (`return_run_details`); where the API does not give it (older GitHub
 * Enterprise Server), the newest workflow_dispatch run of that workflow
 * created after the dispatch whose title contains the run id is taken, and
 * failing that the oldest unclaimed one (see README for the limits).
 */
export class GithubInvoker implements Invoker {
  readonly type = 'GITHUB' as const;
  announce(): 'if-slow' {
    return 'if-slow';
  }
  private readonly auth: GithubAuth;
  /**
   * Workflow run ids already matched to a Port run (fallback matching), with
   * when. A lookup lists runs created from 10 s before its dispatch and goes
   * on for GITHUB_FIND_RUN_TIMEOUT_MS: a claim older than that (and a minute
   * for clocks) can match no lookup any more and is forgotten.
   */
  private readonly claimed = new Map<number, number>();

  constructor(private readonly config: GithubConfig) {
    this.auth = new GithubAuth(config);
  }

  describe(run: FrozenRun): string {
    const m = run.invocationMethod;
    return `GitHub workflow ${String(m.org)}/${String(m.repo)}/${String(m.workflow)}`;
  }

  async invoke(run: FrozenRun, ctx: InvocationContext): Promise<InvocationOutcome> {
    const target = githubTarget(run);
    if (target instanceof RouterError) return { status: 'failed', code: target.code, summary: target.message };
    if (!this.auth.configured) {
      return { status: 'failed', code: ErrorCodes.AUTH_FAILED, summary: 'GitHub dispatch not attempted: set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY' };
    }
    const where = `${target.owner}/${target.repo} workflow ${target.workflow} on ${target.ref}`;
    const dispatchedAt = Date.now();
    const details: { workflow_run_id?: number; html_url?: string } = {};
    let attempts: number;
    try {
      const result = await withRetry(this.config.retry, ctx.signal, () => this.dispatch(target, ctx.signal), (e, n, wait) =>
        ctx.logger.warn({ attempt: n, waitMs: wait, error: e.message }, 'GitHub dispatch failed; retrying'),
      );
      attempts = result.attempts;
      // GitHub's return_run_details answer; a 204, or one that cannot be read, leaves the run to be found by listing.
      const answer = bodyObject(result.value.body);
      if (answer && Number.isSafeInteger(answer.workflow_run_id)) details.workflow_run_id = answer.workflow_run_id as number;
      if (answer && typeof answer.html_url === 'string') details.html_url = answer.html_url;
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      const e = err as RouterError;
      return { status: 'failed', code: e.code, summary: `GitHub dispatch of ${where} failed: ${e.message}`, attempt: Number(e.details.attempts ?? 1) };
    }
    const links = details.html_url ? [details.html_url] : [];
    const externalRunId = details.workflow_run_id ? String(details.workflow_run_id) : undefined;
    if (!target.report) {
      return { status: 'succeeded', summary: `Dispatched ${where} (workflow status not followed)`, links, externalRunId, attempt: attempts };
    }
    ctx.follow((signal) => this.followRun(run, target, dispatchedAt, details.workflow_run_id, ctx, signal));
    return { status: 'delivered', log: `Dispatched ${where}; following the workflow run`, links, externalRunId, attempt: attempts };
  }

  /**
   * In doubt (a dispatch recorded STARTED, then the router died): the
   * workflow run of that first dispatch, found by the run id in its title
   * (Port's `run-name` convention), is followed instead of dispatching
   * again. Without the run id in the title nothing can tell it from another
   * dispatch of the same workflow: null, and the run is dispatched again.
   */
  async recover(run: FrozenRun, ctx: InvocationContext, startedAt: number): Promise<InvocationOutcome | null> {
    const target = githubTarget(run);
    if (target instanceof RouterError || !this.auth.configured) return null;
    const since = new Date(startedAt - 10_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const path = `/repos/${enc(target.owner)}/${enc(target.repo)}/actions/workflows/${enc(target.workflow)}/runs?event=workflow_dispatch&created=%3E%3D${since}&per_page=100`;
    let found: WorkflowRun | undefined;
    try {
      const res = await this.request('GET', path, target, ctx.signal);
      found = ((JSON.parse(res.body) as { workflow_runs?: WorkflowRun[] }).workflow_runs ?? []).find((r) => `${r.display_title ?? ''} ${r.name ?? ''}`.includes(run.runId));
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      ctx.logger.warn({ err: describeError(err) }, 'cannot look for the first dispatch of a run in doubt; dispatching again');
      return null;
    }
    const where = `${target.owner}/${target.repo} workflow ${target.workflow}`;
    if (!found) {
      ctx.logger.info({ since }, `no workflow run of ${where} carries the run id: dispatching again`);
      return null;
    }
    this.claim(found.id);
    const foundRun = found;
    const fields = { links: [foundRun.html_url], externalRunId: String(foundRun.id) };
    if (!target.report) return { status: 'succeeded', summary: `Dispatched ${where} before the router restarted: workflow run ${foundRun.id} (not followed)`, ...fields };
    ctx.follow((signal) => this.followRun(run, target, startedAt, foundRun.id, ctx, signal));
    return { status: 'delivered', log: `Dispatched before the router restarted: workflow run ${foundRun.id} of ${where} found; following it, not dispatching again`, ...fields };
  }

  async resume(run: FrozenRun, job: { externalRunId: string; startedAt: number }, ctx: InvocationContext, signal: AbortSignal): Promise<void> {
    const target = githubTarget(run);
    const id = Number(job.externalRunId);
    if (target instanceof RouterError || !target.report || !Number.isSafeInteger(id)) return;
    await this.followRun(run, target, job.startedAt, id, ctx, signal);
  }

  private async request(method: string, path: string, target: GithubTarget, signal: AbortSignal, body?: object): Promise<HttpResponse> {
    const res = await httpRequest({
      method,
      url: `${this.config.apiUrl}${path}`,
      headers: {
        authorization: await this.auth.header(target.owner, target.repo, signal),
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        'user-agent': 'action-router',
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      timeoutMs: this.config.timeoutMs,
      maxResponseBytes: 1024 * 1024,
      signal,
    });
    const err = statusError(res, `GitHub ${method} ${path}`);
    if (err) throw rateLimited(res, err);
    return res;
  }

  private async dispatch(target: GithubTarget, signal: AbortSignal): Promise<HttpResponse> {
    const path = `/repos/${enc(target.owner)}/${enc(target.repo)}/actions/workflows/${enc(target.workflow)}/dispatches`;
    try {
      return await this.request('POST', path, target, signal, { ref: target.ref, inputs: target.inputs, return_run_details: true });
    } catch (err) {
      // GitHub Enterprise Server releases without run details reject the field.
      if (err instanceof BackendError && err.details.status === 422 && /return_run_details/.test(err.message)) {
        return this.request('POST', path, target, signal, { ref: target.ref, inputs: target.inputs });
      }
      throw err;
    }
  }

  private async findRun(run: FrozenRun, target: GithubTarget, dispatchedAt: number, signal: AbortSignal): Promise<WorkflowRun | null> {
    const since = new Date(dispatchedAt - 10_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const path = `/repos/${enc(target.owner)}/${enc(target.repo)}/actions/workflows/${enc(target.workflow)}/runs?event=workflow_dispatch&created=%3E%3D${since}&per_page=50`;
    const deadline = Date.now() + this.config.findRunTimeoutMs;
    for (let n = 1; Date.now() < deadline; n++) {
      const res = await this.request('GET', path, target, signal);
      const runs = ((JSON.parse(res.body) as { workflow_runs?: WorkflowRun[] }).workflow_runs ?? []).filter(
        (r) => !this.claimed.has(r.id),
      );
      const titled = runs.find((r) => `${r.display_title ?? ''} ${r.name ?? ''}`.includes(run.runId));
      const chosen = titled ?? [...runs].sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id - b.id)[0];
      if (chosen) {
        this.claim(chosen.id);
        return chosen;
      }
      await sleep(Math.min(this.config.pollIntervalMs * n, 15_000), signal);
    }
    return null;
  }

  private claim(id: number): void {
    const now = Date.now();
    const keep = this.config.findRunTimeoutMs + 10_000 + 60_000;
    // Oldest first (a Map keeps insertion order): stop at the first claim still needed.
    for (const [claimedId, at] of this.claimed) {
      if (now - at <= keep) break;
      this.claimed.delete(claimedId);
    }
    this.claimed.set(id, now);
  }

  /** How many workflow runs are held as claimed now (bounded by the lookup window). */
  get claimedCount(): number {
    return this.claimed.size;
  }

  private async followRun(run: FrozenRun, target: GithubTarget, dispatchedAt: number, knownId: number | undefined, ctx: InvocationContext, signal: AbortSignal) {
    const where = `${target.owner}/${target.repo} ${target.workflow}`;
    let id = knownId;
    if (!id) {
      let found: WorkflowRun | null;
      try {
        found = await this.findRun(run, target, dispatchedAt, signal);
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        await ctx.report({ status: 'FAILURE', statusLabel: 'FOLLOW_FAILED', summary: `Looking for the workflow run of ${where} failed: ${describeError(err)}` });
        return;
      }
      if (!found) {
        await ctx.report({ status: 'FAILURE', summary: `Dispatched ${where}, but no workflow run appeared within ${this.config.findRunTimeoutMs} ms`, statusLabel: 'NOT_FOUND' });
        return;
      }
      id = found.id;
      await ctx.report({ status: 'IN_PROGRESS', log: `Workflow run ${found.id} found`, links: [found.html_url], externalRunId: String(found.id) });
    }
    const runPath = `/repos/${enc(target.owner)}/${enc(target.repo)}/actions/runs/${id}`;
    await followJob({
      ctx,
      signal,
      intervalMs: this.config.pollIntervalMs,
      timeoutMs: Math.max(0, dispatchedAt + this.config.pollTimeoutMs - Date.now()),
      what: `Workflow run ${id} of ${where}`,
      poll: async (s) => {
        const wr = JSON.parse((await this.request('GET', runPath, target, s)).body) as WorkflowRun;
        const done = wr.status === 'completed';
        return {
          id: String(wr.id),
          // Finished runs are labelled with their conclusion (success, failure, cancelled...).
          state: done ? (wr.conclusion ?? 'unknown') : wr.status,
          url: wr.html_url,
          outcome: done ? (wr.conclusion === 'success' ? 'SUCCESS' : 'FAILURE') : null,
          summary: `Workflow run ${wr.id} of ${where} concluded ${wr.conclusion ?? 'without a conclusion'}`,
        };
      },
    });
  }

  async close(): Promise<void> {
    this.auth.close();
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

/**
 * GitHub signals rate limits with 403 or 429 and `x-ratelimit-remaining: 0`
 * (primary) or `retry-after` (secondary): wait until the reset, then retry.
 */
function rateLimited(res: HttpResponse, err: BackendError): BackendError {
  if (res.status !== 403 && res.status !== 429) return err;
  const remaining = res.headers['x-ratelimit-remaining'];
  const reset = Number(res.headers['x-ratelimit-reset']);
  const after = retryAfterMs(res.headers['retry-after']);
  if (remaining !== '0' && after === undefined) return err;
  const waitMs = after ?? (Number.isFinite(reset) ? Math.max(0, reset * 1000 - Date.now()) : 60_000);
  return new BackendError(ErrorCodes.BACKEND_UNAVAILABLE, `GitHub rate limit reached (HTTP ${res.status}); retry in ${Math.ceil(waitMs / 1000)} s`, {
    retriable: true,
    details: { status: res.status, retryAfterMs: waitMs },
  });
}
