import { backoffStrategies, when, type Agenda, type Job } from 'agenda';
import type { Logger } from '../src/logger.js';
import type { AgendaHandle, JobName } from './agenda.js';

/** Thrown inside a job when its worker is stopping: the job is handed back to the queue, not failed. */
export class Interrupted extends Error {
  constructor() {
    super('interrupted: the worker is stopping');
  }
}

/**
 * A failure that a retry cannot mend (no writer runs, an operator gave up waiting): the job fails
 * for good at once with this message, instead of retrying with backoff and showing QUEUED.
 */
export class Permanent extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** What a job body gets: its data (with the phase it reached), a way to save it, progress, a stop signal. */
export interface JobContext<D> {
  id: string;
  data: D;
  signal: AbortSignal;
  log: Logger;
  /** persists `data` (the job's phase) so a re-run after a crash resumes from there */
  save(data: D): Promise<void>;
  /** 0..1; also keeps the job's lock alive */
  progress(fraction: number): Promise<void>;
  /** sleeps, or throws Interrupted when the worker stops */
  sleep(ms: number): Promise<void>;
  /** throws Interrupted when the worker stops */
  check(): void;
  /**
   * What the job does now and what it waits on, in words ("rebuilding: waiting for the writer of
   * partition 3 to reach offset 41,200"): kept in `data.note` (written at most twice a second),
   * shown by the operator CLIs on their progress line.
   */
  note(text: string): void;
}

export type JobBody<D> = (ctx: JobContext<D>) => Promise<void>;

export interface JobOptions {
  /** how long a lock lives without a touch; a crashed worker's job is resumed after it */
  lockLifetime: number;
  concurrency: number;
  /** retries with exponential backoff; then the job stays FAILED with its error */
  retries: number;
  retryDelayMs: number;
}

/**
 * Runs job bodies under Agenda with a heartbeat (the lock is touched every quarter of its
 * lifetime, so only a dead worker lets it expire) and a stop signal. On stop, running jobs are
 * handed back: Agenda unlocks them, and since a one-off job that was running has no next run
 * time, `stop()` sets it to now so another worker resumes it from its saved phase at once.
 */
export class JobRuntime {
  private readonly running = new Map<string, { abort: AbortController; settled: Promise<void> }>();
  /** job id → why it was cancelled: its body ends, and the job fails for good with that reason */
  private readonly cancelled = new Map<string, string>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly handle: AgendaHandle,
    private readonly log: Logger,
  ) {}

  get agenda(): Agenda {
    return this.handle.agenda;
  }

  define<D>(name: JobName, body: JobBody<D>, opts: JobOptions): void {
    this.agenda.define<D>(
      name,
      async (job: Job<D>) => {
        const id = String(job.attrs._id);
        const abort = new AbortController();
        const onStop = () => abort.abort();
        this.stopping.signal.addEventListener('abort', onStop, { once: true });
        let touching: Promise<void> = Promise.resolve();
        let lastProgress = typeof job.attrs.progress === 'number' ? job.attrs.progress : 0;
        let lastTouch = Date.now();
        const touch = (progress: number) => {
          lastTouch = Date.now();
          touching = touching.then(() => job.touch(progress)).catch((err) => this.log.warn({ err, job: id }, 'job touch failed'));
          return touching;
        };
        const heartbeat = setInterval(
          () => {
            if (Date.now() - lastTouch >= opts.lockLifetime / 4) void touch(lastProgress);
          },
          Math.max(250, Math.floor(opts.lockLifetime / 8)),
        );
        const log = this.log.child({ job: name, jobId: id });
        const stopped = () => (this.cancelled.has(id) ? new Permanent(this.cancelled.get(id)!) : new Interrupted());
        let noteNow: string | undefined;
        let noteWritten: string | undefined;
        let noteTimer: NodeJS.Timeout | null = null;
        let noteAt = 0;
        const writeNote = () => {
          noteTimer = null;
          noteAt = Date.now();
          if (noteNow === noteWritten) return;
          noteWritten = noteNow;
          touching = touching
            .then(() =>
              this.handle.pool.query(
                `UPDATE "agenda_jobs" SET data = jsonb_set(coalesce(data, '{}'::jsonb), '{note}', $2::jsonb) WHERE id = $1`,
                [id, JSON.stringify(noteWritten)],
              ),
            )
            .then(() => undefined)
            .catch((err) => this.log.warn({ err, job: id }, 'job note failed'));
        };
        const ctx: JobContext<D> = {
          id,
          data: (job.attrs.data ?? {}) as D,
          signal: abort.signal,
          log,
          save: async (data) => {
            ctx.check();
            ctx.data = data;
            job.attrs.data = data;
            await this.handle.saveData(id, data);
          },
          progress: async (fraction) => {
            ctx.check();
            const p = Math.round(Math.min(1, Math.max(0, fraction)) * 10_000) / 100;
            const changed = p !== lastProgress;
            lastProgress = p;
            // at most one write a second, unless the lock needs it
            if (changed && Date.now() - lastTouch >= 1000) await touch(p);
          },
          sleep: (ms) =>
            new Promise<void>((resolve, reject) => {
              if (abort.signal.aborted) return reject(stopped());
              const t = setTimeout(() => {
                abort.signal.removeEventListener('abort', onAbort);
                resolve();
              }, ms);
              const onAbort = () => {
                clearTimeout(t);
                reject(stopped());
              };
              abort.signal.addEventListener('abort', onAbort, { once: true });
            }),
          check: () => {
            if (abort.signal.aborted) throw stopped();
          },
          note: (text) => {
            noteNow = text;
            (ctx.data as { note?: string }).note = text;
            if (!noteTimer) noteTimer = setTimeout(writeNote, Math.max(0, noteAt + 500 - Date.now()));
          },
        };
        let settle!: () => void;
        const settled = new Promise<void>((r) => (settle = r));
        this.running.set(id, { abort, settled });
        try {
          const queuedFor = (job.attrs.data as { log?: unknown } | undefined)?.log;
          if (typeof queuedFor === 'string' && this.handle.logTag && queuedFor !== this.handle.logTag) {
            throw new Permanent(
              `queued for another log (${queuedFor}); this worker follows ${this.handle.logTag}: npm run adopt-log clears such jobs`,
            );
          }
          await body(ctx);
          await touch(100);
        } catch (err) {
          const reason = this.cancelled.get(id);
          if (reason !== undefined) {
            log.warn({ reason }, 'job cancelled');
            throw err instanceof Permanent ? err : new Permanent(reason);
          }
          if (err instanceof Interrupted || abort.signal.aborted) {
            log.info('job handed back to the queue: the worker is stopping');
            // never settle: Agenda must record neither a success nor a failure; stop() re-queues it
            settle();
            return new Promise<void>(() => undefined);
          }
          log.warn({ err }, 'job failed');
          throw err;
        } finally {
          clearInterval(heartbeat);
          if (noteTimer) clearTimeout(noteTimer);
          this.stopping.signal.removeEventListener('abort', onStop);
          this.running.delete(id);
          this.cancelled.delete(id);
          settle();
        }
      },
      {
        concurrency: opts.concurrency,
        lockLifetime: opts.lockLifetime,
        backoff: when(
          (c) => !(c.error instanceof Permanent),
          backoffStrategies.exponential({ delay: opts.retryDelayMs, maxRetries: opts.retries, maxDelay: 5 * 60_000, jitter: 0.2 }),
        ),
      },
    );
  }

  /**
   * Ends a job running in this process with a failure (no retry) that says `reason`; resolves once
   * its body has ended. False when it does not run here.
   */
  async cancel(id: string, reason: string): Promise<boolean> {
    const r = this.running.get(id);
    if (!r) return false;
    this.cancelled.set(id, reason);
    r.abort.abort();
    await r.settled;
    return true;
  }

  async stop(): Promise<void> {
    const ids = [...this.running.keys()];
    const settled = [...this.running.values()].map((r) => r.settled);
    this.stopping.abort();
    await Promise.race([Promise.all(settled), new Promise((r) => setTimeout(r, 5000))]);
    await this.agenda.stop(false);
    if (ids.length > 0) {
      await this.handle.pool
        .query(`UPDATE "agenda_jobs" SET locked_at = NULL, next_run_at = now() WHERE id = ANY($1::uuid[]) AND next_run_at IS NULL`, [ids])
        .catch((err) => this.log.warn({ err }, 'could not re-queue the jobs that were running'));
    }
  }
}
