import { ErrorCodes, RejectedEventError } from '../../src/errors';
import { JqEvaluator } from '../../src/mapping/jq';
import { PayloadTemplates } from '../../src/mapping/templates';
import type { FrozenRun } from '../../src/model/run';
import { samplePortMessage } from '../../src/sample';
import { decodeTrigger } from '../../src/codec/decode';

/** `{{ }}` templates of invocation methods, over the action's context. */
describe('PayloadTemplates', () => {
  const jq = new JqEvaluator({ timeoutMs: 300, maxOutputChars: 10_000 });
  const templates = new PayloadTemplates(jq);
  afterAll(() => templates.close());

  const runOf = async (invocationMethod: Record<string, unknown>): Promise<FrozenRun> => {
    const decoded = await decodeTrigger(Buffer.from(JSON.stringify(samplePortMessage({ runId: 'r_tpl', invocationMethod: invocationMethod as never, properties: { version: '1.2', replicas: 3 } }))));
    if (!decoded.ok) throw decoded.error;
    return decoded.run;
  };

  it('keeps a whole template’s type, writes mixed ones as text, and leaves other fields and types alone', async () => {
    const run = await runOf({
      type: 'WEBHOOK',
      url: 'http://x/{{ .run.id }}',
      body: { version: '{{ .inputs.version }}', replicas: '{{.inputs.replicas}}', label: 'v{{ .inputs.version }} x{{ .inputs.replicas }}', who: '{{ .trigger.by.orgId }}', run: '{{ .run.id }}', plain: 'no template', n: 1 },
      headers: { 'X-Action': '{{ .action.identifier }}' },
    });
    const out = await templates.render(run);
    expect(out.invocationMethod.body).toEqual({ version: '1.2', replicas: 3, label: 'v1.2 x3', who: run.orgId, run: 'r_tpl', plain: 'no template', n: 1 });
    expect(out.invocationMethod.headers).toEqual({ 'X-Action': run.action });
    // Only the documented fields: a url is not a template field.
    expect(out.invocationMethod.url).toBe('http://x/{{ .run.id }}');
    const github = await templates.render(await runOf({ type: 'GITHUB', org: 'o', repo: 'r', workflow: 'w', workflowInputs: { version: '{{ .inputs.version }}' } }));
    expect(github.invocationMethod.workflowInputs).toEqual({ version: '1.2' });
    const gitlab = await templates.render(await runOf({ type: 'GITLAB', groupName: 'g', projectName: 'p', pipelineVariables: { REPLICAS: '{{ .inputs.replicas | tostring }}' } }));
    expect(gitlab.invocationMethod.pipelineVariables).toEqual({ REPLICAS: '3' });
    const none = await runOf({ type: 'WEBHOOK', url: 'http://x', body: { a: 1 } });
    expect(await templates.render(none)).toBe(none);
  });

  it('rejects a run whose template fails, naming the field and not the values; a catalog check names the action', async () => {
    const err = await templates.render(await runOf({ type: 'WEBHOOK', url: 'http://x', body: { bad: '{{ .inputs.version | error }}' } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RejectedEventError);
    expect((err as RejectedEventError).code).toBe(ErrorCodes.TEMPLATE_FAILED);
    expect((err as Error).message).toBe('the template at invocationMethod.body.bad failed (a jq error)');
    await expect(templates.check({ type: 'webhook', body: { x: '{{ .a ||| }}' } }, 'action deploy, invocationMethod')).rejects.toThrow(/^action deploy, invocationMethod, body\.x: jq: compile error/);
  });
});
