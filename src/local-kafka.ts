import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface EnsuredBroker {
  brokers: string;
  started: boolean;
}

interface KafkaScript {
  ensureBroker(): Promise<EnsuredBroker>;
  stopSharedBroker(): Promise<boolean>;
}

// Keeps a real dynamic import (the ES module) through the CommonJS build.
const importModule = new Function('url', 'return import(url)') as (url: string) => Promise<KafkaScript>;

const SCRIPT = join(__dirname, '..', 'scripts', 'kafka.mjs');

/** scripts/kafka.mjs, the embedded local broker's manager. */
export function loadKafkaScript(): Promise<KafkaScript> {
  return importModule(pathToFileURL(SCRIPT).href);
}

/** Whether this installation carries the local broker's manager (a checkout does; the container image does not). */
export function localBrokerAvailable(): boolean {
  return existsSync(SCRIPT);
}
