import { createVerify } from 'node:crypto';
import { FakeHttpServer, Recorded, Scripted } from './http-fake';

export interface FakeWorkflowRun {
  id: number;
  name: string;
  display_title: string;
  event: 'workflow_dispatch';
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: string | null;
  html_url: string;
  created_at: string;
  head_branch: string;
  inputs: Record<string, unknown>;
  workflow: string;
  repo: string;
}

export interface FakeGithubOptions {
  token?: string;
  /** A GitHub App's id and public key: JWTs are verified, installation tokens minted. */
  app?: { id: string; publicKey: string };
  /** Repositories that exist, `owner/repo`; others answer 404. */
  repos?: string[];
  /** Answer dispatches with run details when asked (GitHub.com since 2026-02). */
  runDetails?: boolean;
  /** How long an installation token takes to mint, and how long it lives (default an hour). */
  tokenDelayMs?: number;
  tokenLifetimeMs?: number;
  /** Time each run spends queued, then in progress. */
  stepMs?: number;
  /** The conclusion of a run, from its inputs (default success; input `conclusion` overrides). */
  conclusion?: (inputs: Record<string, unknown>) => string;
  /** How long a dispatch's answer waits, from its inputs (input `answer_after_ms` overrides): the run exists at once, as when GitHub is slow to answer. */
  answerAfterMs?: (inputs: Record<string, unknown>) => number;
}

const MAX_INPUTS = 25;

/**
 * A local server speaking the parts of GitHub's REST API the router uses:
 * workflow dispatch, list workflow runs, get a run, and the App
 * installation-token flow, with GitHub's status codes and error bodies.
 */
export class FakeGithub extends FakeHttpServer {
  readonly runs: FakeWorkflowRun[] = [];
  readonly tokens = new Set<string>();
  private nextId = 9_000_000;

  constructor(private readonly options: FakeGithubOptions = {}) {
    super();
    if (options.token) this.tokens.add(options.token);
    const repo = '/repos/([^/]+)/([^/]+)';
    this.route('POST', new RegExp(`^${repo}/actions/workflows/([^/]+)/dispatches$`), (r, m) => this.dispatch(r, m));
    this.route('GET', new RegExp(`^${repo}/actions/workflows/([^/]+)/runs$`), (r, m) => this.list(r, m));
    this.route('GET', new RegExp(`^${repo}/actions/runs/(\\d+)$`), (r, m) => this.get(r, m));
    this.route('GET', new RegExp(`^${repo}/installation$`), (r) => this.installation(r));
    this.route('POST', /^\/app\/installations\/(\d+)\/access_tokens$/, (r) => this.accessToken(r));
  }

  private authorized(req: Recorded): Scripted | null {
    const header = req.headers.authorization ?? '';
    const token = header.replace(/^(Bearer|token) /, '');
    if (!this.tokens.has(token)) return { status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } };
    return null;
  }

  private repoMissing(m: RegExpMatchArray): Scripted | null {
    if (!this.options.repos || this.options.repos.includes(`${m[1]}/${m[2]}`)) return null;
    return { status: 404, body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } };
  }

  private dispatch(req: Recorded, m: RegExpMatchArray): Scripted {
    const denied = this.authorized(req) ?? this.repoMissing(m);
    if (denied) return denied;
    const body = JSON.parse(req.body || '{}') as { ref?: unknown; inputs?: Record<string, unknown>; return_run_details?: boolean };
    if (typeof body.ref !== 'string') return { status: 422, body: { message: 'Invalid request.\n\n"ref" wasn\'t supplied.' } };
    const inputs = body.inputs ?? {};
    if (Object.keys(inputs).length > MAX_INPUTS) {
      return { status: 422, body: { message: `you may only define up to ${MAX_INPUTS} \`inputs\` for a workflow_dispatch event` } };
    }
    if (body.return_run_details && this.options.runDetails === false) {
      return { status: 422, body: { message: 'Invalid request.\n\n"return_run_details" is not a permitted key.' } };
    }
    const context = typeof inputs.port_context === 'string' ? (JSON.parse(inputs.port_context) as { runId?: string }) : {};
    const id = this.nextId++;
    const run: FakeWorkflowRun = {
      id,
      name: decodeURIComponent(m[3]!),
      display_title: context.runId ? `Port run ${context.runId}` : decodeURIComponent(m[3]!),
      event: 'workflow_dispatch',
      status: 'queued',
      conclusion: null,
      html_url: `${this.url}/${m[1]}/${m[2]}/actions/runs/${id}`,
      created_at: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      head_branch: body.ref,
      inputs,
      workflow: decodeURIComponent(m[3]!),
      repo: `${m[1]}/${m[2]}`,
    };
    this.runs.push(run);
    const step = this.options.stepMs ?? 300;
    setTimeout(() => (run.status = 'in_progress'), step).unref();
    setTimeout(() => {
      run.status = 'completed';
      run.conclusion = typeof inputs.conclusion === 'string' ? inputs.conclusion : this.options.conclusion?.(inputs) ?? 'success';
    }, step * 2).unref();
    const asked = Number(inputs.answer_after_ms);
    const delayMs = Number.isFinite(asked) && asked > 0 ? asked : this.options.answerAfterMs?.(inputs) ?? 0;
    if (body.return_run_details && this.options.runDetails !== false) {
      return { status: 200, delayMs, body: { workflow_run_id: id, run_url: `${this.url}/repos/${m[1]}/${m[2]}/actions/runs/${id}`, html_url: run.html_url } };
    }
    return { status: 204, delayMs };
  }

  private list(req: Recorded, m: RegExpMatchArray): Scripted {
    const denied = this.authorized(req) ?? this.repoMissing(m);
    if (denied) return denied;
    const created = req.query.get('created') ?? '';
    const since = created.startsWith('>=') ? Date.parse(created.slice(2)) : 0;
    const runs = this.runs
      .filter((r) => r.repo === `${m[1]}/${m[2]}` && r.workflow === decodeURIComponent(m[3]!) && Date.parse(r.created_at) >= since)
      .sort((a, b) => b.id - a.id);
    return { status: 200, body: { total_count: runs.length, workflow_runs: runs } };
  }

  private get(req: Recorded, m: RegExpMatchArray): Scripted {
    const denied = this.authorized(req);
    if (denied) return denied;
    const run = this.runs.find((r) => r.id === Number(m[3]));
    return run ? { status: 200, body: run } : { status: 404, body: { message: 'Not Found' } };
  }

  private verifyJwt(req: Recorded): boolean {
    const app = this.options.app;
    const jwt = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    const [h, p, s] = jwt.split('.');
    if (!app || !h || !p || !s) return false;
    const ok = createVerify('RSA-SHA256').update(`${h}.${p}`).verify(app.publicKey, Buffer.from(s, 'base64url'));
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as { iss: string; exp: number };
    return ok && claims.iss === app.id && claims.exp * 1000 > Date.now();
  }

  private installation(req: Recorded): Scripted {
    if (!this.verifyJwt(req)) return { status: 401, body: { message: 'A JSON web token could not be decoded' } };
    return { status: 200, body: { id: 42, app_id: Number(this.options.app?.id) } };
  }

  private accessToken(req: Recorded): Scripted {
    if (!this.verifyJwt(req)) return { status: 401, body: { message: 'A JSON web token could not be decoded' } };
    const token = `ghs_${Math.random().toString(36).slice(2)}`;
    this.tokens.add(token);
    const expiresAt = new Date(Date.now() + (this.options.tokenLifetimeMs ?? 3600_000)).toISOString();
    return { status: 201, body: { token, expires_at: expiresAt }, delayMs: this.options.tokenDelayMs };
  }
}
