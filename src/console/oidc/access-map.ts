import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { ALL_ORGS } from '../../access/principal';
import { ConfigError, describeError } from '../../errors';
import type { Logger } from '../../log';

/** One group's grant: the org it opens (or `*`: every org) and the roles it gives there. */
const ruleSchema = z.strictObject({ orgId: z.string().min(1).max(256), roles: z.array(z.string().min(1).max(64)).max(32).default([]) });
const fileSchema = z.record(z.string().min(1).max(256), ruleSchema);

export type AccessRule = z.infer<typeof ruleSchema>;

/** What a person's groups grant: one org (or every org) and roles there. */
export interface Grant {
  orgId: string;
  roles: string[];
  /** The groups that granted it (the log says which). */
  groups: string[];
}

function parseFile(path: string): Map<string, AccessRule> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError('OIDC_ACCESS_FILE', `${path}: ${(err as Error).message}`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError('OIDC_ACCESS_FILE', `${path}: at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return new Map(Object.entries(parsed.data));
}

/**
 * OIDC_ACCESS_FILE: which groups of the provider open which org, with which
 * roles. `{"platform-admins": {"orgId": "*", "roles": ["admin"]},
 * "team-payments": {"orgId": "org_payments", "roles": ["approver"]}}`.
 * A person belongs to one org here: a `*` grant wins (with the roles of
 * every `*` group), else the org of the first matching group in the file's
 * order, with the roles of every matching group of that org. The file is
 * checked at start (a bad one stops it) and read again when it changes; a
 * bad edit keeps the rules in force and is logged.
 */
export class PeopleAccess {
  private rules: Map<string, AccessRule>;
  private stamp: string;

  constructor(
    private readonly path: string,
    private readonly logger: Logger,
  ) {
    this.rules = parseFile(path);
    this.stamp = this.currentStamp();
  }

  private currentStamp(): string {
    try {
      const s = statSync(this.path);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      return 'missing';
    }
  }

  private fresh(): Map<string, AccessRule> {
    const stamp = this.currentStamp();
    if (stamp === this.stamp) return this.rules;
    this.stamp = stamp;
    try {
      this.rules = parseFile(this.path);
      this.logger.info({ groups: this.rules.size }, 'OIDC_ACCESS_FILE reloaded');
    } catch (err) {
      this.logger.error({ err: describeError(err) }, 'OIDC_ACCESS_FILE changed but cannot be used; the rules read before stay in force');
    }
    return this.rules;
  }

  /** The grant of these groups, or null when no rule names one of them. */
  grant(groups: readonly string[]): Grant | null {
    const rules = this.fresh();
    const matching = [...rules.entries()].filter(([group]) => groups.includes(group));
    if (matching.length === 0) return null;
    const everyOrg = matching.filter(([, r]) => r.orgId === ALL_ORGS);
    const chosen = everyOrg.length ? everyOrg : matching.filter(([, r]) => r.orgId === matching[0]![1].orgId);
    return { orgId: chosen[0]![1].orgId, roles: [...new Set(chosen.flatMap(([, r]) => r.roles))], groups: chosen.map(([g]) => g) };
  }
}
