import { randomBytes } from 'node:crypto';
import type { JsonObject } from './model/json';

export function newRunId(): string {
  return `r_${randomBytes(8).toString('base64url')}`;
}

export interface SampleOptions {
  runId?: string;
  orgId?: string;
  action?: string;
  invocationMethod?: JsonObject;
  properties?: JsonObject;
  trigger?: 'CREATE' | 'DAY-2' | 'DELETE';
}

/** A Port run message, as Port publishes it, for demos, tests and `trigger`. */
export function samplePortMessage(options: SampleOptions = {}): JsonObject {
  const runId = options.runId ?? newRunId();
  const trigger = options.trigger ?? 'DAY-2';
  const entity = trigger === 'CREATE' ? null : {
    identifier: 'payments',
    title: 'Payments',
    blueprint: 'service',
    properties: { language: 'TypeScript', tier: 1 },
    relations: {},
  };
  return {
    action: options.action ?? 'deploy_service',
    resourceType: 'run',
    status: 'TRIGGERED',
    trigger: {
      by: {
        orgId: options.orgId ?? 'org_demo',
        userId: 'auth0|u42',
        user: { email: 'dev@example.com', firstName: 'Dana', lastName: 'Lee' },
      },
      origin: 'UI',
      at: new Date().toISOString(),
    },
    context: { entity: entity ? 'payments' : null, blueprint: 'service', runId },
    payload: {
      entity,
      action: { invocationMethod: options.invocationMethod ?? { type: 'KAFKA' }, trigger },
      properties: options.properties ?? { version: '1.4.2', environment: 'staging' },
      censoredProperties: [],
    },
  };
}
