import { JsonLike, JsonMap, JsonNumber, pythonJson } from '../../model/lossless-json';
import { portMessageJson, toPortMessage } from '../../codec/port-message';
import { BackendError, ErrorCodes, RouterError } from '../../errors';
import type { FrozenRun } from '../../model/run';
import { HttpResponse, bodyObject, httpRequest, statusError } from '../../net/http-client';
import type { InvocationContext, InvocationOutcome, Invoker } from '../invoker';
import { followJob } from '../follow';
import { AbortedError, withRetry } from '../../net/retry';
import type { GitlabConfig } from './config';

export interface GitlabTarget {
  /** `group/project` (the group may hold subgroups: `a/b/project`). */
  path: string;
  ref: string;
  variables: Record<string, string>;
  /** The run message (JSON text), also sent as a top-level `port_payload` object as Port's agent does; null with omitPayload. */
  payload: string | null;
  token: string | undefined;
  tokenNames: string[];
}

interface Pipeline {
  id: number;
  status: string;
  web_url: string;
}

/** The pipeline an answer names, or null when it names none. */
function pipelineOf(body: string): Pipeline | null {
  const p = bodyObject(body);
  if (!p || !Number.isSafeInteger(p.id) || typeof p.web_url !== 'string') return null;
  return { id: p.id as number, status: typeof p.status === 'string' ? p.status : 'created', web_url: p.web_url };
}

const FAILED = new Set(['failed', 'canceled', 'skipped']);

/** A variable's text: strings as they are, numbers as written, the rest as JSON. */
function asString(v: JsonLike): string {
  if (typeof v === 'string') return v;
  if (v instanceof JsonNumber) return v.text;
  return pythonJson(v);
}

/**
 * The trigger request: token, ref, variables and, like Port's agent, the run
 * message as a top-level `port_payload` object (GitLab hands the request
 * body to the pipeline in the $TRIGGER_PAYLOAD file).
 */
export function triggerBody(target: GitlabTarget): string {
  const base = JSON.stringify({ token: target.token, ref: target.ref, variables: target.variables });
  return target.payload === null ? base : `${base.slice(0, -1)},"port_payload":${target.payload}}`;
}

/** Port's agent's name for a project's token: `<group>_<project>`, `/` in the group as `_`. */
export function tokenEnvName(group: string, project: string): string {
  return `${group.replace(/\//g, '_')}_${project}`;
}

/** Builds the trigger from Port's GITLAB invocation method (PORT-REFERENCE.md, GITLAB). */
export function gitlabTarget(run: FrozenRun, config: GitlabConfig): GitlabTarget | RouterError {
  const m = run.invocationMethod;
  for (const key of ['groupName', 'projectName'] as const) {
    if (typeof m[key] !== 'string' || m[key] === '') {
      return new BackendError(ErrorCodes.INVOCATION_INVALID, `GITLAB invocation method needs "${key}"`);
    }
  }
  const group = m.groupName as string;
  const project = m.projectName as string;
  const path = `${group}/${project}`;
  const refInput = run.properties.ref;
  const ref = typeof refInput === 'string' && refInput ? refInput : typeof m.defaultRef === 'string' && m.defaultRef ? m.defaultRef : 'main';
  const variables: Record<string, string> = {};
  const inputs = run.lossless?.properties instanceof JsonMap ? run.lossless.properties.entries : Object.entries(run.properties);
  if (m.omitUserInputs !== true) for (const [k, v] of inputs) if (v !== null) variables[k] = asString(v);
  const payload = m.omitPayload === true ? null : portMessageJson(toPortMessage(run), run);
  if (payload !== null) variables.port_payload = payload;
  if (m.pipelineVariables && typeof m.pipelineVariables === 'object' && !Array.isArray(m.pipelineVariables)) {
    for (const [k, v] of Object.entries(m.pipelineVariables)) variables[k] = asString(v);
  }
  const envName = tokenEnvName(group, project);
  return {
    path,
    ref,
    variables,
    payload,
    token: config.triggerTokens[path] ?? config.envTokens[envName],
    tokenNames: [`"${path}" in GITLAB_TRIGGER_TOKENS_FILE`, `env GITLAB_TRIGGER_TOKEN_${envName}`],
  };
}

/**
 * GITLAB runs: a pipeline trigger with the project's trigger token. With
 * GITLAB_API_TOKEN the pipeline is followed to SUCCESS/FAILURE; without it
 * the run stays IN_PROGRESS for the pipeline to report on its own.
 */
export class GitlabInvoker implements Invoker {
  readonly type = 'GITLAB' as const;
  announce(): 'if-slow' {
    return 'if-slow';
  }

  constructor(private readonly config: GitlabConfig) {}

  describe(run: FrozenRun): string {
    return `GitLab pipeline of ${String(run.invocationMethod.groupName)}/${String(run.invocationMethod.projectName)}`;
  }

  async invoke(run: FrozenRun, ctx: InvocationContext): Promise<InvocationOutcome> {
    const target = gitlabTarget(run, this.config);
    if (target instanceof RouterError) return { status: 'failed', code: target.code, summary: target.message };
    if (!target.token) {
      return { status: 'failed', code: ErrorCodes.AUTH_FAILED, summary: `No GitLab trigger token for ${target.path}: set ${target.tokenNames.join(' or ')}` };
    }
    const url = `${this.config.url}/api/v4/projects/${encodeURIComponent(target.path)}/trigger/pipeline`;
    let answer: HttpResponse;
    let attempts: number;
    try {
      const result = await withRetry(this.config.retry, ctx.signal, async () => {
        const res = await httpRequest({
          method: 'POST',
          url,
          headers: { 'content-type': 'application/json', 'user-agent': 'action-router' },
          body: triggerBody(target),
          timeoutMs: this.config.timeoutMs,
          maxResponseBytes: 256 * 1024,
          signal: ctx.signal,
        });
        const err = statusError(res, `GitLab trigger of ${target.path}`);
        if (err) throw err;
        return res;
      }, (e, n, wait) => ctx.logger.warn({ attempt: n, waitMs: wait, error: e.message }, 'GitLab trigger failed; retrying'));
      answer = result.value;
      attempts = result.attempts;
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      const e = err as RouterError;
      return { status: 'failed', code: e.code, summary: `GitLab pipeline trigger of ${target.path} on ${target.ref} failed: ${e.message}`, attempt: Number(e.details.attempts ?? 1) };
    }
    // GitLab took the trigger: whatever its answer says, the pipeline must not be triggered again.
    const pipeline = pipelineOf(answer.body);
    if (!pipeline) {
      return { status: 'delivered', log: `GitLab took the trigger for ${target.path} on ${target.ref} (HTTP ${answer.status}) but its answer names no pipeline: it cannot be followed`, attempt: attempts };
    }
    const fields = { links: [pipeline.web_url], externalRunId: String(pipeline.id), attempt: attempts };
    if (this.config.apiToken) ctx.follow((signal) => this.followPipeline(target, pipeline, ctx, signal));
    return { status: 'delivered', log: `GitLab pipeline ${pipeline.id} triggered for ${target.path} on ${target.ref}`, statusLabel: pipeline.status, ...fields };
  }

  async resume(run: FrozenRun, job: { externalRunId: string; startedAt: number }, ctx: InvocationContext, signal: AbortSignal): Promise<void> {
    const target = gitlabTarget(run, this.config);
    if (target instanceof RouterError || !this.config.apiToken) return;
    await this.followPipeline(target, { id: Number(job.externalRunId), status: 'unknown', web_url: '' }, ctx, signal);
  }

  private followPipeline(target: GitlabTarget, first: Pipeline, ctx: InvocationContext, signal: AbortSignal): Promise<void> {
    const url = `${this.config.url}/api/v4/projects/${encodeURIComponent(target.path)}/pipelines/${first.id}`;
    return followJob({
      ctx,
      signal,
      intervalMs: this.config.pollIntervalMs,
      timeoutMs: this.config.pollTimeoutMs,
      what: `GitLab pipeline ${first.id} of ${target.path}`,
      initialState: first.status,
      poll: async (s) => {
        const res = await httpRequest({
          method: 'GET',
          url,
          headers: { 'PRIVATE-TOKEN': this.config.apiToken!, 'user-agent': 'action-router' },
          timeoutMs: this.config.timeoutMs,
          maxResponseBytes: 256 * 1024,
          signal: s,
        });
        const err = statusError(res, `GitLab pipeline ${first.id}`);
        if (err) throw err;
        const p = JSON.parse(res.body) as Pipeline;
        const ended = p.status === 'success' || FAILED.has(p.status);
        return {
          id: String(p.id),
          state: p.status,
          url: p.web_url,
          outcome: ended ? (p.status === 'success' ? 'SUCCESS' : 'FAILURE') : null,
          summary: `GitLab pipeline ${p.id} of ${target.path} ended ${p.status}`,
        };
      },
    });
  }

  async close(): Promise<void> {}
}
