import { Worker } from 'node:worker_threads';
import type { Config } from '../config.js';
import type { Health, HealthReporter } from '../health.js';
import type { LogIdentity } from '../infra/kafka/logIdentity.js';
import { logger } from '../logger.js';
import type { ReadSide } from './index.js';
import type { FromReadSide, ToReadSide } from './thread.js';

/** What the read side's thread shows of itself at a scrape of /metrics. */
export interface ThreadMetrics {
  /** its registry, rendered after the process's */
  text: string;
  /** records it parked, per consumer */
  parked: [string, number][];
}

export interface ReadSideHandle extends ReadSide {
  /** a thread's own metrics; the process's registry holds those of a host in the main thread */
  metrics?(): Promise<ThreadMetrics | null>;
}

/**
 * The consumer host and its processors in a worker thread of this process (see ./thread.ts for
 * why), as the main thread sees it. The thread is created at once and loads its modules; `start`
 * (once the database is prepared) connects and joins, and resolves when the host runs.
 */
export class ReadSideThread {
  private readonly worker: Worker;
  private ready = false;
  private exited = false;
  private asked = 0;
  private readonly answers = new Map<number, (m: ThreadMetrics) => void>();
  private readonly reporters = new Map<string, HealthReporter>();
  private health: Health | null = null;
  /** settles when the thread has started its host, failed to, or died */
  private readonly started: Promise<void>;

  constructor(config: Config, instance: string, roles: readonly string[]) {
    const entry = import.meta.url.endsWith('.ts') ? './thread-entry.mjs' : './thread.js';
    this.worker = new Worker(new URL(entry, import.meta.url), { workerData: { config, instance, roles } });
    this.started = new Promise<void>((resolve, reject) => {
      this.worker.on('message', (m: FromReadSide) => {
        if (m.type === 'started') resolve();
        if (m.type === 'failed') reject(new Error(`read side thread: ${m.message}`));
      });
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`read side thread exited (${code}) before it started`)));
    });
    // awaited by start; a thread that fails before is not an unhandled rejection meanwhile
    this.started.catch(() => undefined);
    this.worker.on('message', (m: FromReadSide) => {
      if (m.type === 'ready') this.ready = m.ready;
      if (m.type === 'health') {
        if (m.error === null) this.reporter(m.name)?.ok(m.part);
        else this.reporter(m.name)?.failing(m.error, m.part);
      }
      if (m.type === 'metrics') this.answers.get(m.id)?.({ text: m.text, parked: m.parked });
    });
    // a thread that dies takes the read side with it: /readyz says so (it is not restarted)
    this.worker.on('error', (err) => {
      logger.fatal({ err }, 'read side thread failed');
      this.reporter('read-side')?.failing(err);
    });
    this.worker.on('exit', () => {
      this.exited = true;
      this.ready = false;
    });
  }

  private post(m: ToReadSide): void {
    this.worker.postMessage(m);
  }

  private reporter(name: string): HealthReporter | undefined {
    if (!this.health) return undefined;
    let r = this.reporters.get(name);
    if (!r) this.reporters.set(name, (r = this.health.reporter(name)));
    return r;
  }

  async start(health: Health, logIdentity: LogIdentity): Promise<ReadSideHandle> {
    this.health = health;
    this.post({ type: 'start', logIdentity });
    await this.started.catch(async (err: unknown) => {
      await this.worker.terminate();
      throw err;
    });
    return {
      ready: () => this.ready,
      metrics: () => this.metrics(),
      stop: () => this.stop(),
    };
  }

  private async metrics(): Promise<ThreadMetrics | null> {
    if (this.exited) return null;
    const id = ++this.asked;
    const answer = new Promise<ThreadMetrics | null>((resolve) => {
      this.answers.set(id, resolve);
      // a thread too busy to answer leaves its part out of this scrape rather than hanging it
      setTimeout(() => resolve(null), 2000).unref();
    }).finally(() => this.answers.delete(id));
    this.post({ type: 'metrics', id });
    return answer;
  }

  private async stop(): Promise<void> {
    if (this.exited) return;
    const stopped = new Promise<void>((r) => this.worker.on('message', (m: FromReadSide) => m.type === 'stopped' && r()));
    this.post({ type: 'stop' });
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 15_000).unref())]);
    await this.worker.terminate();
  }

  /** A start that never came (the database could not be prepared). */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
