import { z } from 'zod';
import { envBoolean, positiveInt } from '../../config/fragments';

export const KAFKA_INVOKER_DEFAULTS = { autoCreateTopics: true, orgTopicPartitions: 3 };

export const kafkaInvokerConfigSchema = z.strictObject({
  /** Create `{orgId}.runs` when it is missing (needs CreateTopics rights). */
  autoCreateTopics: envBoolean.default(KAFKA_INVOKER_DEFAULTS.autoCreateTopics),
  orgTopicPartitions: positiveInt.default(KAFKA_INVOKER_DEFAULTS.orgTopicPartitions),
});
export type KafkaInvokerConfig = z.infer<typeof kafkaInvokerConfigSchema>;

export const kafkaInvokerEnv = {
  autoCreateTopics: 'ORG_TOPIC_AUTO_CREATE',
  orgTopicPartitions: 'ORG_TOPIC_PARTITIONS',
};
