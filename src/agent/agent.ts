import { join } from 'node:path';
import { Config, secretForOrg } from '../config/config';
import { mappingEnvironment } from '../config/env';
import { JqEvaluator } from '../mapping/jq';
import { PayloadMappings } from '../mapping/payload-mapping';
import type { AgentLedgerPlace } from './call-ledger';
import { AgentIntake } from './intake';
import { MappedInvoker } from './mapped-invoker';

/** The topic `action-router agent` reads for `orgId`: AGENT_TOPIC (Port's KAFKA_RUNS_TOPIC), else the org's topic. */
export function agentTopic(config: Config, orgId: string): string {
  return config.agent.topic ?? config.topics.orgTemplate.split('{orgId}').join(orgId);
}

/** Its consumer group: AGENT_GROUP_ID (Port's KAFKA_CONSUMER_GROUP_ID), else the router's group + "-agent". */
export function agentGroupId(config: Config): string {
  return config.agent.groupId ?? `${config.groupId}-agent`;
}

/**
 * The agent's call ledger: AGENT_LEDGER_PATH, else `<DATA_DIR>/agent-calls-<org>.db`,
 * so that agents of different orgs sharing a data directory never share a file.
 */
export function agentLedgerPlace(config: Config, orgId: string): AgentLedgerPlace {
  if (config.agent.ledgerPath) return { path: config.agent.ledgerPath, variable: 'AGENT_LEDGER_PATH' };
  return { path: join(config.dataDir, `agent-calls-${orgId.replace(/[^A-Za-z0-9._-]/g, '_')}.db`), variable: 'DATA_DIR' };
}

/**
 * What makes `action-router agent` Port's agent: its intake (the org
 * topic's agent runs, signatures checked) and its one invoker, the payload
 * mapping (CONTROL_THE_PAYLOAD_CONFIG_PATH, or the built-in default),
 * compiled here: a file that does not load stops the start.
 */
export async function agentParts(config: Config, orgId: string, env: NodeJS.ProcessEnv = process.env): Promise<{ intake: AgentIntake; invoker: MappedInvoker }> {
  const jq = new JqEvaluator(config.jq, mappingEnvironment(env));
  let mappings: PayloadMappings;
  try {
    mappings = await PayloadMappings.load(config.agent.mappingPath, jq);
  } catch (err) {
    await jq.close();
    throw err;
  }
  const intake = new AgentIntake(config, orgId);
  const webhook = config.invokers.webhook;
  const invoker = new MappedInvoker({
    mappings,
    messageOf: (run) => intake.messageOf(run),
    secretFor: (org) => secretForOrg(config.signing, org),
    timeoutMs: webhook.timeoutMs,
    connectTimeoutMs: webhook.connectTimeoutMs,
    maxResponseBytes: webhook.maxResponseBytes,
    allowedHosts: webhook.allowedHosts,
    verifyTls: config.agent.verifyTls,
    detailedLogging: config.agent.detailedLogging,
  });
  return { intake, invoker };
}
