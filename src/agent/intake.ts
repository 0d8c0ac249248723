import type { KafkaMessage } from 'kafkajs';
import { decodeTrigger } from '../codec/decode';
import { Config, secretForOrg } from '../config/config';
import { ErrorCodes, RejectedEventError } from '../errors';
import { verifyOrgMessageBody } from '../invokers/kafka/org-message';
import { verifyPortSignature } from '../invokers/sign';
import { isJsonObject } from '../model/json';
import type { FrozenRun } from '../model/run';
import type { Intake, IntakeResult } from '../router/stages/intake';

/**
 * The agent's intake: reads Port's run message from the org topic, checks
 * its signature when a secret is configured for the org, and keeps only the
 * runs flagged `agent: true` (the rest belong to the org's KAFKA backend).
 */
export class AgentIntake implements Intake {
  private readonly secret: string | undefined;
  private readonly tolerance: number;
  /** Each run's message as it came (the payload mapping starts from it), for as long as the run is held. */
  private readonly messages = new WeakMap<FrozenRun, string>();

  constructor(config: Config, orgId: string) {
    this.secret = secretForOrg(config.signing, orgId);
    this.tolerance = config.agent.signatureToleranceSeconds;
  }

  async accept(message: KafkaMessage): Promise<IntakeResult> {
    const decoded = await decodeTrigger(message.value);
    if (!decoded.ok) return { kind: 'reject', error: decoded.error, identity: decoded.identity };
    const run = decoded.run;
    if (!run.invocationMethod.agent) return { kind: 'skip', reason: 'not flagged agent: true' };
    if (this.secret) {
      const problem = this.verify(message);
      if (problem) {
        return {
          kind: 'reject',
          error: new RejectedEventError(ErrorCodes.SIGNATURE_INVALID, `Port signature check failed: ${problem}`),
          identity: { runId: run.runId, orgId: run.orgId, action: run.action },
        };
      }
    }
    this.messages.set(run, message.value!.toString('utf8'));
    return { kind: 'run', run };
  }

  /** The text of the message `run` came in, while the run is held. */
  messageOf(run: FrozenRun): string | undefined {
    return this.messages.get(run);
  }

  /** Null when the message is signed correctly, else the reason. */
  private verify(message: KafkaMessage): string | null {
    const secret = this.secret!;
    const options = { toleranceSeconds: this.tolerance };
    const text = message.value!.toString('utf8');
    const parsed: unknown = JSON.parse(text);
    if (isJsonObject(parsed) && isJsonObject(parsed.headers)) {
      // Port's way: the signature travels inside the message.
      const result = verifyOrgMessageBody(text, secret, options);
      return result.ok ? null : `in-body signature ${result.reason}`;
    }
    const header = (name: string) => message.headers?.[name]?.toString();
    const result = verifyPortSignature(secret, message.value!, header('x-port-timestamp'), header('x-port-signature'), options);
    return result.ok ? null : `header signature ${result.reason}`;
  }
}
