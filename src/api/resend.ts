import { randomBytes } from 'node:crypto';
import type { IHeaders, KafkaMessage } from 'kafkajs';
import { ALL_ORGS, Principal, isOrgAdmin } from '../access/principal';
import { describeError } from '../errors';
import { DeadLetterRow, cutOnTopic } from '../store/dead-letters';
import { ApiError } from './errors';
import type { RunsService } from './service';

/** The header a re-sent event carries: where it came from, `<dead-letter topic>/<partition>/<offset>`. */
export const RESENT_FROM_HEADER = 'x-action-router-resent-from';
export const RESENT_BY_HEADER = 'x-action-router-resent-by';

/** Letters one request re-sends at most (all of a reason: the newest this many). */
export const MAX_RESEND = 500;
/** How long reading the letters back from the dead-letter topic may take. */
const READ_TIMEOUT_MS = 20_000;

export type ResendOutcome =
  /** On the trigger topic again; its run (if it names one) reopened. */
  | 'resent'
  /** Not re-sent: the same run's newer letter is in this request. */
  | 'duplicate'
  /** Not re-sent: the topic holds only the letter's first bytes (x-dlq-trimmed). */
  | 'trimmed'
  /** Not re-sent: the letter is no longer on the dead-letter topic (retention). */
  | 'gone'
  /** Not re-sent: its run did not end FAILURE (it was re-sent already, or a backend finished it). */
  | 'not-reopened';

export interface ResendResult {
  seq: number;
  letter: string;
  runId: string | null;
  outcome: ResendOutcome;
  message: string;
}

/** Who may re-send a letter: an operator any, an org admin its own org's. */
export function mayResend(principal: Principal, letter: Pick<DeadLetterRow, 'orgId'>): boolean {
  return principal.orgId === ALL_ORGS || isOrgAdmin(principal, letter.orgId);
}

const letterId = (d: Pick<DeadLetterRow, 'partition' | 'offset'>) => `${d.partition}/${d.offset}`;

/**
 * Reads the letters' original messages back from the dead-letter topic
 * (the store keeps a masked copy only): a consumer of a group of its own,
 * positioned at each partition's first wanted offset, until every wanted
 * one was read. Letters past the topic's retention are left out.
 */
async function readOriginals(runs: RunsService, wanted: DeadLetterRow[]): Promise<Map<string, KafkaMessage>> {
  const topic = runs.dlqTopic;
  const found = new Map<string, KafkaMessage>();
  const bounds = new Map((await runs.admin.fetchTopicOffsets(topic)).map((p) => [p.partition, { low: BigInt(p.low), high: BigInt(p.high) }]));
  const remaining = new Set(
    wanted.filter((d) => {
      const b = bounds.get(d.partition);
      return b !== undefined && BigInt(d.offset) >= b.low && BigInt(d.offset) < b.high;
    }).map(letterId),
  );
  if (remaining.size === 0) return found;
  const starts = new Map<number, bigint>();
  for (const id of remaining) {
    const [p, o] = id.split('/');
    const partition = Number(p);
    const offset = BigInt(o!);
    if (!starts.has(partition) || offset < starts.get(partition)!) starts.set(partition, offset);
  }
  const groupId = `${runs.groupId}-resend-${randomBytes(6).toString('hex')}`;
  const consumer = runs.kafka.consumer({ groupId, maxWaitTimeInMs: 250, allowAutoTopicCreation: false });
  let timer: NodeJS.Timeout | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    const complete = new Promise<void>((resolve) => {
      void consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const id = `${batch.partition}/${m.offset}`;
            if (remaining.delete(id)) found.set(id, m);
          }
          if (remaining.size === 0) resolve();
        },
      });
    });
    for (const [partition, offset] of starts) consumer.seek({ topic, partition, offset: String(offset) });
    const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, READ_TIMEOUT_MS)));
    await Promise.race([complete, expired]);
    if (remaining.size > 0) throw new ApiError(503, 'unavailable', `the dead-letter topic did not return ${remaining.size} letter(s) within ${READ_TIMEOUT_MS / 1000} s; nothing of those was re-sent`);
    return found;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
    await runs.admin.deleteGroups([groupId]).catch((err: unknown) => runs.logger.warn({ err: describeError(err), groupId }, 'could not delete the re-send group'));
  }
}

/** The original headers without the dead-letter ones, and where the event comes from. */
function resentHeaders(original: IHeaders | undefined, from: string, by: string): IHeaders {
  const headers: IHeaders = {};
  for (const [k, v] of Object.entries(original ?? {})) if (!k.startsWith('x-dlq-') && !k.startsWith('x-action-router-resent-')) headers[k] = v;
  headers[RESENT_FROM_HEADER] = from;
  headers[RESENT_BY_HEADER] = by;
  return headers;
}

/**
 * Re-sends dead letters to TRIGGER_TOPIC with their original key, value
 * and headers (so censored inputs travel as they came, never through the
 * console), each at most once per request: letters are keyed by their
 * dead-letter offset, and of two letters of one run only the newest goes.
 * A letter that names a run first reopens it (a status update applied
 * before the event is sent, with a log line saying who re-sent what); a
 * run that did not end FAILURE is not reopened and its letter not sent,
 * which also makes two racing requests send it once.
 */
export async function resendLetters(runs: RunsService, principal: Principal, letters: DeadLetterRow[]): Promise<ResendResult[]> {
  const results: ResendResult[] = [];
  const newestOfRun = new Map<string, number>();
  for (const d of letters) if (d.runId && (newestOfRun.get(d.runId) ?? 0) < d.seq) newestOfRun.set(d.runId, d.seq);
  const result = (d: DeadLetterRow, outcome: ResendOutcome, message: string) => results.push({ seq: d.seq, letter: letterId(d), runId: d.runId, outcome, message });
  const seen = new Set<string>();
  const todo: DeadLetterRow[] = [];
  for (const d of letters) {
    if (seen.has(letterId(d))) continue;
    seen.add(letterId(d));
    if (d.runId && newestOfRun.get(d.runId) !== d.seq) result(d, 'duplicate', `a newer letter of run ${d.runId} is re-sent instead`);
    else if (cutOnTopic(d)) result(d, 'trimmed', 'the dead-letter topic holds only the first bytes of this event');
    else todo.push(d);
  }
  const originals = todo.length ? await readOriginals(runs, todo) : new Map<string, KafkaMessage>();
  for (const d of todo) {
    const id = letterId(d);
    const message = originals.get(id);
    if (!message) {
      result(d, 'gone', 'the letter is no longer on the dead-letter topic (retention)');
      continue;
    }
    if (d.runId) {
      const run = runs.store.getRun(d.runId);
      const ref = { id: d.runId, orgId: d.orgId, action: run?.action ?? null, invocationType: run?.invocationType ?? null };
      const { applied, run: after } = await runs.writeApplied(ref, principal.clientId, {
        status: 'IN_PROGRESS',
        source: 'ROUTER',
        statusLabel: 're-sent',
        summary: null,
        log: `Re-sent from dead letter ${id} (${d.reason ?? 'unknown reason'}) by ${principal.clientId}`,
        resentFrom: id,
      });
      if (applied.result !== 'applied') {
        result(d, 'not-reopened', `run ${d.runId} is ${after?.status ?? 'not in the store'}: only a run that ended FAILURE is re-sent`);
        continue;
      }
    }
    await runs.producer.send({
      topic: runs.triggerTopic,
      messages: [{ key: message.key, value: message.value, headers: resentHeaders(message.headers, `${runs.dlqTopic}/${id}`, principal.clientId) }],
    });
    runs.logger.info({ letter: id, runId: d.runId, by: principal.clientId, reason: d.reason }, 'dead letter re-sent');
    result(d, 'resent', d.runId ? `run ${d.runId} reopened and its event re-sent` : 're-sent (the letter names no run)');
  }
  return results.sort((a, b) => b.seq - a.seq);
}
