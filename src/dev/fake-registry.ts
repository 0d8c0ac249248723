import { FakeHttpServer, Scripted } from './http-fake';

interface Stored {
  id: number;
  subject: string;
  version: number;
  schema: string;
}

/**
 * A local server implementing the Confluent schema-registry endpoints the
 * router's client uses: register, look up by id, latest version, and the
 * per-subject compatibility config. Apicurio (a real registry on the JDK)
 * is not published as a runnable artifact, so tests use this instead.
 */
export class FakeSchemaRegistry extends FakeHttpServer {
  readonly stored: Stored[] = [];
  readonly compatibility = new Map<string, string>();

  constructor() {
    super();
    const subject = '/subjects/([^/]+)';
    this.route('GET', /^\/subjects$/, () => ({ status: 200, body: [...new Set(this.stored.map((x) => x.subject))] }));
    this.route('POST', new RegExp(`^${subject}/versions$`), (r, m) => this.register(decodeURIComponent(m[1]!), r.body));
    this.route('POST', new RegExp(`^${subject}$`), (r, m) => this.lookup(decodeURIComponent(m[1]!), r.body));
    this.route('GET', new RegExp(`^${subject}/versions/latest$`), (_r, m) => this.latest(decodeURIComponent(m[1]!)));
    this.route('GET', /^\/schemas\/ids\/(\d+)$/, (_r, m) => this.byId(Number(m[1])));
    this.route('GET', /^\/config\/([^/]+)$/, (_r, m) => {
      const level = this.compatibility.get(decodeURIComponent(m[1]!));
      return level ? { status: 200, body: { compatibilityLevel: level } } : { status: 404, body: { error_code: 40401, message: 'Subject not found' } };
    });
    this.route('PUT', /^\/config\/([^/]+)$/, (r, m) => {
      const { compatibility } = JSON.parse(r.body) as { compatibility: string };
      this.compatibility.set(decodeURIComponent(m[1]!), compatibility);
      return { status: 200, body: { compatibility } };
    });
  }

  private register(subject: string, body: string): Scripted {
    const { schema } = JSON.parse(body) as { schema: string };
    const canonical = JSON.stringify(JSON.parse(schema));
    const same = this.stored.find((s) => s.schema === canonical);
    const mine = this.stored.filter((s) => s.subject === subject);
    if (same && mine.some((s) => s.id === same.id)) return { status: 200, body: { id: same.id } };
    const id = same?.id ?? this.stored.reduce((n, s) => Math.max(n, s.id), 0) + 1;
    this.stored.push({ id, subject, version: mine.length + 1, schema: canonical });
    return { status: 200, body: { id } };
  }

  private lookup(subject: string, body: string): Scripted {
    const canonical = JSON.stringify(JSON.parse((JSON.parse(body) as { schema: string }).schema));
    const s = this.stored.find((x) => x.subject === subject && x.schema === canonical);
    return s ? { status: 200, body: s } : { status: 404, body: { error_code: 40403, message: 'Schema not found' } };
  }

  private latest(subject: string): Scripted {
    const s = this.stored.filter((x) => x.subject === subject).pop();
    return s ? { status: 200, body: s } : { status: 404, body: { error_code: 40401, message: 'Subject not found' } };
  }

  private byId(id: number): Scripted {
    const s = this.stored.find((x) => x.id === id);
    return s ? { status: 200, body: { schema: s.schema } } : { status: 404, body: { error_code: 40403, message: 'Schema not found' } };
  }
}
