import { readFileSync } from 'node:fs';
import { ErrorCodes, RouterError } from './errors';

/**
 * `action-router runs list|show|logs|watch`: the runs API (and the
 * console's live feed, for watch) from a terminal. Signs in with client
 * credentials like any backend would.
 */

export const RUNS_USAGE = `Usage: action-router runs <command> [options]

  list                    runs, newest first
      --status S --action ID --org ORG --type T --active --q TEXT --limit N --offset N
  show RUN_ID             one run
  logs RUN_ID [--follow]  a run's logs (--follow: until the run ends)
  watch [RUN_ID]          runs as they change (one run: until it ends)
  create ACTION           execute an action of the router's catalog: --props JSON|@FILE, --entity ID (DAY-2, DELETE);
                          --wait follows the run to its end (exit 0 for SUCCESS, 1 otherwise)
  approve RUN_ID          approve a run that waits for approval (--description TEXT)
  decline RUN_ID          decline it (--description TEXT)
  cancel RUN_ID           cancel a waiting run (its requester or an org admin)

  --json                  machine-readable output (watch, logs --follow: one JSON object per line)
  --url URL               the router's HTTP server (ACTION_ROUTER_URL; default http://127.0.0.1:$HTTP_PORT)
  --client-id ID          (ACTION_ROUTER_CLIENT_ID)
  --client-secret SECRET  (ACTION_ROUTER_CLIENT_SECRET, or ACTION_ROUTER_CLIENT_SECRET_FILE)`;

/** A problem the user can act on: printed as is, exit 1. */
export class CliError extends RouterError {
  constructor(message: string) {
    super(ErrorCodes.USAGE, message);
    this.name = 'CliError';
  }
}

type Flags = { [flag: string]: string | boolean | string[] | undefined };
type Json = Record<string, unknown>;

const TERMINAL = new Set(['SUCCESS', 'FAILURE', 'DECLINED']);

function flag(args: Flags, key: string): string | undefined {
  const v = args[key];
  return typeof v === 'string' ? v : undefined;
}

export interface RunsClientOptions {
  url: string;
  clientId: string;
  clientSecret: string;
}

/** Connection settings from flags, then the environment. */
export function clientOptions(args: Flags, env: NodeJS.ProcessEnv): RunsClientOptions {
  const url = flag(args, 'url') ?? env.ACTION_ROUTER_URL ?? `http://127.0.0.1:${env.HTTP_PORT || 8080}`;
  const clientId = flag(args, 'client-id') ?? env.ACTION_ROUTER_CLIENT_ID;
  let clientSecret = flag(args, 'client-secret') ?? env.ACTION_ROUTER_CLIENT_SECRET;
  if (!clientSecret && env.ACTION_ROUTER_CLIENT_SECRET_FILE) {
    try {
      clientSecret = readFileSync(env.ACTION_ROUTER_CLIENT_SECRET_FILE, 'utf8').trim();
    } catch (err) {
      throw new CliError(`ACTION_ROUTER_CLIENT_SECRET_FILE: ${(err as Error).message}`);
    }
  }
  if (!clientId) throw new CliError('a client id is needed: --client-id or ACTION_ROUTER_CLIENT_ID');
  if (!clientSecret) throw new CliError('a client secret is needed: --client-secret, ACTION_ROUTER_CLIENT_SECRET or ACTION_ROUTER_CLIENT_SECRET_FILE');
  try {
    new URL(url);
  } catch {
    throw new CliError(`--url / ACTION_ROUTER_URL is not a URL: ${url}`);
  }
  return { url: url.replace(/\/+$/, ''), clientId, clientSecret };
}

export class RunsClient {
  private token: { value: string; until: number } | null = null;

  constructor(private readonly options: RunsClientOptions) {}

  private async bearer(): Promise<string> {
    if (this.token && Date.now() < this.token.until) return this.token.value;
    const res = await this.fetch('/v1/auth/access_token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: this.options.clientId, clientSecret: this.options.clientSecret }),
    });
    const body = (await res.json()) as Json;
    if (!res.ok) throw new CliError(`sign-in refused (${res.status}): ${String(body.message ?? body.error)}`);
    // Renew a minute early.
    this.token = { value: String(body.accessToken), until: Date.now() + (Number(body.expiresIn) - 60) * 1000 };
    return this.token.value;
  }

  private async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(`${this.options.url}${path}`, init);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach ${this.options.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
  }

  async get(path: string): Promise<Json> {
    return this.call('GET', path);
  }

  async call(method: string, path: string, body?: unknown): Promise<Json> {
    const res = await this.fetch(path, {
      method,
      headers: { authorization: `Bearer ${await this.bearer()}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = (await res.json().catch(() => ({}))) as Json;
    if (!res.ok) throw new CliError(res.status === 404 ? 'not found (unknown run, or not one of your org)' : `${res.status}: ${String(answer.message ?? answer.error ?? res.statusText)}`);
    return answer;
  }

  /**
   * The live feed: calls `onEvent` for each event until `signal` aborts or
   * `onEvent` returns true. Reconnects (with a fresh token) when the stream ends.
   */
  async watch(onEvent: (event: string, data: unknown) => Promise<boolean | void> | boolean | void, signal: AbortSignal): Promise<void> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${this.options.url}/console/events`, { headers: { authorization: `Bearer ${await this.bearer()}`, accept: 'text/event-stream' }, signal });
      } catch (err) {
        if (signal.aborted) return;
        if (attempt >= 5) throw new CliError(`cannot reach ${this.options.url}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
        continue;
      }
      if (res.status === 404) throw new CliError('this server has no live feed (CONSOLE=false?)');
      if (!res.ok || !res.body) throw new CliError(`live feed refused: ${res.status}`);
      attempt = 0;
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length && (await onEvent(event, JSON.parse(data.join('\n')))) === true) return;
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        if ((err as Error).name !== 'TypeError') throw err;
      }
    }
  }
}

const time = (v: unknown) => (typeof v === 'number' ? new Date(v).toISOString() : typeof v === 'string' ? v : '');
const text = (v: unknown) => (v === null || v === undefined ? '' : String(v));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

function runLine(r: Json): string {
  const action = typeof r.action === 'object' && r.action ? (r.action as Json).identifier : r.action;
  const label = text(r.statusLabel || r.summary);
  return `${time(r.updatedAt ?? r.createdAt)}  ${text(r.status).padEnd(11)}  ${text(r.id)}  ${text(action)}${r.orgId ? ` (${text(r.orgId)})` : ''}${label ? `  ${label}` : ''}`;
}

export async function runsCommand(argv: { _: string[] } & Flags, env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const [, command, id] = argv._;
  const json = argv.json === true;
  if (!command || command === 'help') {
    out(RUNS_USAGE);
    return command ? 0 : 2;
  }
  const needId = () => {
    if (!id) throw new CliError(`runs ${command} needs a RUN_ID`);
    return encodeURIComponent(id);
  };
  const client = new RunsClient(clientOptions(argv, env));
  switch (command) {
    case 'list': {
      const q = new URLSearchParams({ limit: flag(argv, 'limit') ?? '50', offset: flag(argv, 'offset') ?? '0' });
      for (const [key, param] of [['status', 'status'], ['action', 'action'], ['org', 'org'], ['type', 'invocation_type'], ['q', 'q']] as const) {
        const v = flag(argv, key);
        if (v) q.set(param, key === 'status' || key === 'type' ? v.toUpperCase() : v);
      }
      if (argv.active) q.set('active', 'true');
      q.set('version', 'v1');
      const { runs } = (await client.get(`/v1/actions/runs?${q}`)) as { runs: Json[] };
      if (json) out(JSON.stringify(runs, null, 2));
      else if (runs.length === 0) out('no runs');
      else
        out(table([['RUN', 'STATUS', 'ACTION', 'ORG', 'TYPE', 'STARTED', 'LABEL'], ...runs.map((r) => [text(r.id), text(r.status), text(r.action), text(r.orgId), text(r.invocationType), time(r.createdAt), text(r.statusLabel ?? r.summary)])]));
      return 0;
    }
    case 'show': {
      const { run } = (await client.get(`/v1/actions/runs/${needId()}?version=v1`)) as { run: Json };
      if (json) {
        out(JSON.stringify(run, null, 2));
        return 0;
      }
      const fields: [string, unknown][] = [
        ['run', run.id], ['status', run.status], ['label', run.statusLabel], ['summary', run.summary], ['action', run.action],
        ['org', run.orgId], ['invocation', run.invocationType], ['entity', (run.entity as Json | null)?.identifier],
        ['external id', run.externalRunId], ['created', run.createdAt], ['updated', run.updatedAt], ['ended', run.endedAt],
        ['created by', run.createdBy], ['links', ((run.link as string[]) ?? []).join(' ')],
      ];
      out(fields.filter(([, v]) => v !== null && v !== undefined && v !== '').map(([k, v]) => `${k.padEnd(12)} ${text(v)}`).join('\n'));
      if (run.properties && Object.keys(run.properties as Json).length) out(`properties   ${JSON.stringify(run.properties)}`);
      if (run.response !== null && run.response !== undefined) out(`response     ${JSON.stringify(run.response)}`);
      return 0;
    }
    case 'logs': {
      const runId = needId();
      let offset = 0;
      const printNew = async () => {
        for (;;) {
          const { runLogs } = (await client.get(`/v1/actions/runs/${runId}/logs?limit=50&offset=${offset}`)) as { runLogs: Json[] };
          for (const l of runLogs) out(json ? JSON.stringify(l) : `${time(l.createdAt)}  ${text(l.createdBy)}  ${text(l.message)}`);
          offset += runLogs.length;
          if (runLogs.length < 50) return;
        }
      };
      if (!argv.follow) {
        await printNew();
        return 0;
      }
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      const ended = async () => {
        const { run } = (await client.get(`/v1/actions/runs/${runId}?version=v1`)) as { run: Json };
        return TERMINAL.has(String(run.status));
      };
      // Read once the feed is open ('hello'): nothing that happens in between is missed.
      await client.watch(async (event, data) => {
        if (event === 'runs' && !(data as Json[]).some((r) => r.id === id)) return;
        if (event !== 'hello' && event !== 'runs' && event !== 'reload') return;
        await printNew();
        if (await ended()) return true;
      }, abort.signal);
      return 0;
    }
    case 'watch': {
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      const runId = id ? needId() : null;
      await client.watch(async (event, data) => {
        if (event === 'hello' && runId) {
          // Where the run stands once the feed is open: nothing after it is missed.
          const { run } = (await client.get(`/v1/actions/runs/${runId}?version=v1`)) as { run: Json };
          out(json ? JSON.stringify(run) : runLine(run));
          return TERMINAL.has(String(run.status));
        }
        if (event !== 'runs') return;
        for (const r of data as Json[]) {
          if (id && r.id !== id) continue;
          out(json ? JSON.stringify(r) : runLine(r));
          if (id && TERMINAL.has(String(r.status))) return true;
        }
      }, abort.signal);
      return 0;
    }
    case 'create': {
      if (!id) throw new CliError('runs create needs an ACTION');
      const given = flag(argv, 'props') ?? '{}';
      let properties: unknown;
      try {
        properties = JSON.parse(given.startsWith('@') ? readFileSync(given.slice(1), 'utf8') : given);
      } catch (err) {
        throw new CliError(`--props: ${(err as Error).message}`);
      }
      if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) throw new CliError('--props: a JSON object of the action\'s inputs');
      const entity = flag(argv, 'entity');
      const { run } = (await client.call('POST', `/v1/actions/${encodeURIComponent(id)}/runs`, { properties, ...(entity ? { entity } : {}) })) as { run: Json };
      out(json ? JSON.stringify(run) : runLine(run));
      if (!argv.wait) return 0;
      let status = String(run.status);
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      await client.watch(async (event, data) => {
        // Where the run stands once the feed is open, then each change: nothing in between is missed.
        const seen = event === 'hello' ? [((await client.get(`/v1/actions/runs/${encodeURIComponent(String(run.id))}?version=v1`)) as { run: Json }).run] : event === 'runs' ? (data as Json[]) : [];
        for (const r of seen) {
          if (r.id !== run.id) continue;
          if (String(r.status) !== status) out(json ? JSON.stringify(r) : runLine(r));
          status = String(r.status);
        }
        return TERMINAL.has(status);
      }, abort.signal);
      return status === 'SUCCESS' ? 0 : 1;
    }
    case 'approve':
    case 'decline':
    case 'cancel': {
      const runId = needId();
      const description = flag(argv, 'description');
      const { run } =
        command === 'cancel'
          ? ((await client.call('POST', `/v1/actions/runs/${runId}/cancel`, description ? { description } : {})) as { run: Json })
          : ((await client.call('PATCH', `/v1/actions/runs/${runId}/approval`, { status: command === 'approve' ? 'APPROVE' : 'DECLINE', ...(description ? { description } : {}) })) as { run: Json });
      out(json ? JSON.stringify(run, null, 2) : runLine(run));
      return 0;
    }
    default:
      throw new CliError(`unknown runs command "${command}"\n\n${RUNS_USAGE}`);
  }
}

export const DEAD_LETTERS_USAGE = `Usage: action-router dead-letters resend P/O | --reason REASON

  resend P/O              re-send the dead letter at partition P, offset O of the dead-letter topic
  resend --reason REASON  re-send every letter of that reason you may (an operator: all; an org admin: its org's)
                          A letter that names a run reopens it first; one run is re-sent once.

  --json, --url, --client-id, --client-secret as for action-router runs`;

/** `action-router dead-letters resend`: the console's re-send, through a Bearer token. Exit 1 when a letter was not re-sent. */
export async function deadLettersCommand(argv: { _: string[] } & Flags, env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const [, command, letter] = argv._;
  const reason = flag(argv, 'reason');
  if (command !== 'resend' || (letter === undefined) === (reason === undefined)) {
    out(DEAD_LETTERS_USAGE);
    return command === 'help' ? 0 : 2;
  }
  if (letter !== undefined && !/^\d+\/\d+$/.test(letter)) throw new CliError(`a letter is PARTITION/OFFSET (as the console shows it), not "${letter}"`);
  const client = new RunsClient(clientOptions(argv, env));
  const res = (await client.call('POST', '/console/api/dead-letters/resend', letter ? { letter } : { reason })) as { results: Json[] };
  if (argv.json) out(JSON.stringify(res.results, null, 2));
  else if (res.results.length === 0) out('no letters to re-send');
  else out(table([['LETTER', 'RUN', 'OUTCOME', 'WHAT'], ...res.results.map((r) => [text(r.letter), text(r.runId ?? '–'), text(r.outcome), text(r.message)])]));
  return res.results.every((r) => r.outcome === 'resent' || r.outcome === 'duplicate') ? 0 : 1;
}
