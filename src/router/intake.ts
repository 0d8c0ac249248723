import type { KafkaMessage } from 'kafkajs';
import type { ActionCatalog } from '../catalog/catalog';
import { EventIdentity, decodeTrigger } from '../codec/decode';
import type { RegistryCodec } from '../codec/registry';
import { RejectedEventError } from '../errors';
import type { FrozenRun } from '../model/run';

export type IntakeResult =
  | { kind: 'run'; run: FrozenRun }
  | { kind: 'reject'; error: RejectedEventError; identity: EventIdentity }
  | { kind: 'skip'; reason: string };

/**
 * Turns one consumed message into a run, a rejection (dead letter) or a
 * deliberate skip. Throws only errors worth retrying (registry down).
 */
export interface Intake {
  accept(message: KafkaMessage): Promise<IntakeResult>;
}

/** The router's intake: decode, validate, then apply the action catalog. */
export class TriggerIntake implements Intake {
  constructor(
    private readonly registry?: RegistryCodec,
    private readonly catalog?: ActionCatalog,
  ) {}

  async accept(message: KafkaMessage): Promise<IntakeResult> {
    const decoded = await decodeTrigger(message.value, { registry: this.registry, key: message.key });
    if (!decoded.ok) return { kind: 'reject', error: decoded.error, identity: decoded.identity };
    if (!this.catalog) return { kind: 'run', run: decoded.run };
    const applied = this.catalog.apply(decoded.run);
    if (applied instanceof RejectedEventError) {
      const { runId, orgId, action } = decoded.run;
      return { kind: 'reject', error: applied, identity: { runId, orgId, action } };
    }
    return { kind: 'run', run: applied };
  }
}
