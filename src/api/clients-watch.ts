import { FSWatcher, statSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '../log';
import type { ApiClients } from './clients';

export interface WatchOptions {
  /** How often the file is re-stat'ed (a watch misses changes on some file systems and mounts). */
  intervalMs: number;
  /** A burst of watch events (an editor's write, a ConfigMap's symlink swap) is read once, this long after. */
  settleMs: number;
}

const DEFAULTS: WatchOptions = { intervalMs: 1_000, settleMs: 100 };

/**
 * Keeps API_CLIENTS_FILE current: a watch on its folder (editors and
 * Kubernetes replace the file rather than write it), a stat every second
 * for what a watch misses, and `reload()` for SIGHUP. A version that does
 * not parse is logged and the last good one stays.
 */
export class ClientsFileWatcher {
  private readonly options: WatchOptions;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private settle: NodeJS.Timeout | null = null;
  private seen: string;
  /** The last problem logged, so a file that stays broken is not logged every second. */
  private problem: string | null = null;

  constructor(
    private readonly clients: ApiClients,
    private readonly path: string,
    private readonly logger: Logger,
    options: Partial<WatchOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
    this.seen = this.signature();
  }

  start(): void {
    try {
      this.watcher = watch(dirname(this.path), (_event, name) => {
        if (name && name !== basename(this.path) && !name.startsWith('..')) return;
        if (this.settle) clearTimeout(this.settle);
        this.settle = setTimeout(() => this.check(), this.options.settleMs);
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // No watch here (some mounts): the periodic stat still sees changes.
    }
    this.timer = setInterval(() => this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Reads the file now, changed or not (SIGHUP). */
  reload(why = 'SIGHUP'): void {
    this.seen = this.signature();
    this.apply(why);
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    if (this.settle) clearTimeout(this.settle);
  }

  private check(): void {
    const now = this.signature();
    if (now === this.seen) return;
    this.seen = now;
    this.apply('changed');
  }

  private apply(why: string): void {
    try {
      if (this.clients.reload()) this.logger.info({ variable: 'API_CLIENTS_FILE', clients: this.clients.size, why }, 'API clients file reloaded');
      else if (why === 'SIGHUP') this.logger.info({ variable: 'API_CLIENTS_FILE', clients: this.clients.size, why }, 'API clients file read again: unchanged');
      this.problem = null;
    } catch (err) {
      const message = (err as Error).message;
      if (message === this.problem) return;
      this.problem = message;
      this.logger.error({ variable: 'API_CLIENTS_FILE', problem: message }, 'API clients file not reloaded; the last good version stays in force');
    }
  }

  /** What changes when the file does: through a symlink, its target's identity, size and time. */
  private signature(): string {
    try {
      const s = statSync(this.path, { bigint: true });
      return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    } catch (err) {
      return `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
    }
  }
}
