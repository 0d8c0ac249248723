import type { KafkaMessage } from 'kafkajs';
import type { StatusCodec } from '../codec/status-codec';
import { describeError } from '../errors';
import type { Logger } from '../log';
import { normalized, updateProblem } from './valid-update';
import { WATCH_HEADER } from './writer-protocol';
import type { WriterEntry } from './run-writer';

/** At most this many skipped-update lines a minute; the rest are counted. */
const SKIP_LOG_PER_MINUTE = 20;

function header(m: KafkaMessage, name: string): string | undefined {
  const v = m.headers?.[name];
  if (v === undefined || v === null) return undefined;
  return (Array.isArray(v) ? v[0] : v)?.toString();
}

/**
 * A status record as the store takes it: the update, or why it is passed
 * over (undecodable, invalid), with the watch mark of the API write it
 * answers. Passed-over records are logged at a bounded rate.
 */
export class EntryDecoder {
  private skipLog = { windowStart: 0, logged: 0, suppressed: 0 };

  constructor(
    private readonly codec: StatusCodec,
    private readonly logger: Logger,
  ) {}

  async decode(partition: number, offset: bigint, m: KafkaMessage): Promise<WriterEntry> {
    const mark = header(m, WATCH_HEADER);
    const skipped = (result: 'undecodable' | 'invalid', reason: string): WriterEntry => {
      this.logSkipped(partition, offset, result, reason);
      return { partition, offset, update: null, problem: { result, reason }, ...(mark ? { mark } : {}) };
    };
    if (!m.value || m.value.length === 0) return skipped('undecodable', 'the record has no value');
    let value: unknown;
    try {
      // JSON is parsed here at once; only Confluent-framed Avro (magic byte 0) needs the registry.
      value = m.value[0] === 0 ? await this.codec.decode(m.value) : JSON.parse(m.value.toString('utf8'));
    } catch (err) {
      return skipped('undecodable', describeError(err));
    }
    const problem = updateProblem(value);
    if (problem) return skipped('invalid', problem);
    return { partition, offset, update: normalized(value as Record<string, unknown>), ...(mark ? { mark } : {}) };
  }

  /** Logs a passed-over record, at most SKIP_LOG_PER_MINUTE lines a minute. */
  logSkipped(partition: number, offset: bigint, result: string, reason: string): void {
    const now = Date.now();
    const s = this.skipLog;
    if (now - s.windowStart > 60_000) {
      if (s.suppressed > 0) this.logger.warn({ suppressed: s.suppressed }, 'more status updates were passed over in the last minute (see action_router_store_updates_total)');
      s.windowStart = now;
      s.logged = 0;
      s.suppressed = 0;
    }
    if (s.logged++ < SKIP_LOG_PER_MINUTE) this.logger.warn({ partition, offset: String(offset), result, reason }, 'status update passed over by the run store: it cannot be applied');
    else s.suppressed++;
  }
}
