import type { JsonObject } from '../model/json';

/** The inputs every demo backend action takes (what samplePortMessage sends). */
const DEPLOY_INPUTS = {
  properties: {
    version: { type: 'string', title: 'Version', pattern: '^\\d+\\.\\d+\\.\\d+$', description: 'Semantic version, for example 1.4.2.' },
    environment: { type: 'string', title: 'Environment', enum: ['staging', 'production'], default: 'staging' },
  },
  required: ['version'],
};

/**
 * The demo's action catalog: one action per backend the demo runs (their
 * invocation methods point at the demo's own receivers), and a few
 * self-service actions whose forms use every input kind the page builds.
 */
export function demoCatalog(methods: Record<string, JsonObject>): JsonObject[] {
  const backends = Object.entries(methods).map(([identifier, invocationMethod]) => ({
    identifier,
    title: `Deploy (${identifier.replace(/^demo_/, '').replace(/_/g, ' ')})`,
    description: 'Deploys a service version; the demo sends one run of each to its backend.',
    icon: 'Deploy',
    trigger: 'DAY-2',
    userInputs: DEPLOY_INPUTS,
    invocationMethod,
  }));
  return [
    {
      identifier: 'scaffold_service',
      title: 'Scaffold a service',
      description: 'Creates a repository from the team template and registers the service.',
      icon: 'Git',
      trigger: 'CREATE',
      userInputs: {
        properties: {
          name: { type: 'string', title: 'Service name', pattern: '^[a-z][a-z0-9-]{2,30}$', description: 'Lower case letters, digits and dashes.' },
          language: { type: 'string', title: 'Language', enum: ['TypeScript', 'Go', 'Python', 'Java'], default: 'TypeScript' },
          description: { type: 'string', title: 'Description', format: 'multi-line', maxLength: 500 },
          replicas: { type: 'integer', title: 'Replicas', minimum: 1, maximum: 10, default: 2 },
          private: { type: 'boolean', title: 'Private repository', default: true },
          regions: { type: 'array', title: 'Regions', items: { type: 'string', enum: ['eu-west-1', 'us-east-1', 'ap-south-1'] }, minItems: 1 },
          owners: { type: 'array', title: 'Owners', items: { type: 'string' }, description: 'One owner per line.' },
          settings: { type: 'object', title: 'Extra settings', description: 'A JSON object passed to the template.' },
          launchAt: { type: 'string', title: 'Launch at', format: 'date-time' },
          contact: { type: 'string', title: 'On-call email', format: 'email' },
          runbook: { type: 'string', title: 'Runbook', format: 'url' },
          registryToken: { type: 'string', title: 'Registry token', encryption: 'aes256-gcm', description: 'Used once to push the first image.' },
        },
        required: ['name', 'language', 'regions', 'contact'],
        order: ['name', 'language', 'description', 'regions', 'replicas', 'private', 'contact', 'owners', 'runbook', 'launchAt', 'settings', 'registryToken'],
      },
      invocationMethod: { type: 'KAFKA' },
    },
    {
      identifier: 'restart_service',
      title: 'Restart a service',
      description: 'Rolls the pods of one service, one at a time.',
      icon: 'Restart',
      trigger: 'DAY-2',
      blueprint: 'service',
      userInputs: { properties: { reason: { type: 'string', title: 'Reason', maxLength: 200 } }, required: ['reason'] },
      invocationMethod: methods.demo_webhook_sync ?? { type: 'KAFKA' },
    },
    {
      identifier: 'retire_service',
      title: 'Retire a service',
      description: 'Archives the repository and removes the service from the catalog. Needs an approval.',
      icon: 'Trash',
      trigger: 'DELETE',
      blueprint: 'service',
      requiredApproval: true,
      userInputs: { properties: { confirm: { type: 'boolean', title: 'I understand this cannot be undone' } }, required: ['confirm'] },
      invocationMethod: { type: 'KAFKA' },
    },
    ...backends,
  ];
}
