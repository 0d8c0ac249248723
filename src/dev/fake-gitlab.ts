import { FakeHttpServer, Recorded, Scripted } from './http-fake';

export interface FakePipeline {
  id: number;
  iid: number;
  project_id: number;
  status: string;
  ref: string;
  web_url: string;
  created_at: string;
  variables: Record<string, string>;
  project: string;
}

export interface FakeGitlabOptions {
  /** `group/project` -> trigger token. */
  triggerTokens: Record<string, string>;
  apiToken?: string;
  stepMs?: number;
}

/**
 * A local server speaking GitLab's pipeline trigger and pipeline status
 * endpoints, with GitLab's answers for bad tokens and unknown projects.
 */
export class FakeGitlab extends FakeHttpServer {
  readonly pipelines: FakePipeline[] = [];
  private nextId = 500;

  constructor(private readonly options: FakeGitlabOptions) {
    super();
    this.route('POST', /^\/api\/v4\/projects\/([^/]+)\/trigger\/pipeline$/, (r, m) => this.trigger(r, m));
    this.route('GET', /^\/api\/v4\/projects\/([^/]+)\/pipelines\/(\d+)$/, (r, m) => this.get(r, m));
  }

  private trigger(req: Recorded, m: RegExpMatchArray): Scripted {
    const project = decodeURIComponent(m[1]!);
    const expected = this.options.triggerTokens[project];
    if (!expected) return { status: 404, body: { message: '404 Project Not Found' } };
    const body = JSON.parse(req.body || '{}') as { token?: string; ref?: string; variables?: Record<string, unknown> };
    if (body.token !== expected) return { status: 404, body: { message: '404 Not Found' } };
    if (!body.ref) return { status: 400, body: { error: 'ref is missing' } };
    for (const v of Object.values(body.variables ?? {})) {
      if (typeof v !== 'string') return { status: 400, body: { error: 'variables is invalid' } };
    }
    const id = this.nextId++;
    const variables = (body.variables ?? {}) as Record<string, string>;
    const p: FakePipeline = {
      id,
      iid: id - 499,
      project_id: 77,
      status: 'created',
      ref: body.ref,
      web_url: `${this.url}/${project}/-/pipelines/${id}`,
      created_at: new Date().toISOString(),
      variables,
      project,
    };
    this.pipelines.push(p);
    const step = this.options.stepMs ?? 300;
    setTimeout(() => (p.status = 'running'), step).unref();
    setTimeout(() => (p.status = variables.pipeline_result ?? 'success'), step * 2).unref();
    return { status: 201, body: p };
  }

  private get(req: Recorded, m: RegExpMatchArray): Scripted {
    if (!this.options.apiToken || req.headers['private-token'] !== this.options.apiToken) {
      return { status: 401, body: { message: '401 Unauthorized' } };
    }
    const p = this.pipelines.find((x) => x.id === Number(m[2]) && x.project === decodeURIComponent(m[1]!));
    return p ? { status: 200, body: p } : { status: 404, body: { message: '404 Not found' } };
  }
}
