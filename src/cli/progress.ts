import cliProgress from 'cli-progress';
import type { Command } from 'commander';

/**
 * What every long operator command shares (npm run replay, report, demo): one progress line that
 * names the phase and what it waits on, and a `--timeout` that ends any wait with exit 124 and
 * the reason.
 */

/** `--timeout`: when the command stops waiting (null: it waits as long as the job does). */
export class Deadline {
  readonly at: number | null;
  constructor(readonly seconds: number | null) {
    this.at = seconds === null ? null : Date.now() + seconds * 1000;
  }
  get passed(): boolean {
    return this.at !== null && Date.now() >= this.at;
  }
  /** ms left, capped at `ms` */
  cap(ms: number): number {
    return this.at === null ? ms : Math.max(0, Math.min(ms, this.at - Date.now()));
  }
}

/** A wait ended by `--timeout`; the CLI exits with EXIT.timedOut and this message. */
export class TimedOut extends Error {
  constructor(
    seconds: number,
    waitingOn: string,
    readonly after?: string,
  ) {
    super(`timed out after ${seconds} s (--timeout) — ${waitingOn}`);
  }
}

/** 0 done, 1 failed, 124 a `--timeout` ended the wait (as timeout(1) does). */
export const EXIT = { ok: 0, failed: 1, timedOut: 124 } as const;

/** Says on stderr why `command` ended with `err`, and returns the exit code that goes with it. */
export function failure(command: string, err: unknown): number {
  if (err instanceof TimedOut) {
    console.error(`${command} ${err.message}`);
    if (err.after) console.error(err.after);
    return EXIT.timedOut;
  }
  console.error(`${command} failed: ${err instanceof Error ? err.message : String(err)}`);
  return EXIT.failed;
}

/** A number of seconds from the command line, or a usage error. */
export function seconds(program: Command, flag: string, value: string | undefined): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) program.error(`${flag} must be a number of seconds`);
  return n;
}

/**
 * The one progress line of an operator command: a bar, the percentage, the time, and last what it
 * does now and what it waits on (a terminal cuts the end of a line, not its start). Without a TTY
 * it prints the whole line every 2 s, uncut (logs, CI and tests read it there).
 */
export class ProgressLine {
  private readonly bar: cliProgress.SingleBar;
  text = '';
  constructor(label: string) {
    const tty = process.stderr.isTTY === true;
    this.bar = new cliProgress.SingleBar(
      {
        format: tty
          ? `${label} |{bar}| {percentage}% | {duration_formatted} | {status}`
          : `${label} {percentage}% {duration_formatted} | {status}`,
        hideCursor: true,
        noTTYOutput: true,
        notTTYSchedule: 2000,
        // cli-progress cuts a line without a TTY at 200 columns
        ...(tty
          ? {}
          : { stream: { isTTY: false, columns: 100_000, write: (x: string) => process.stderr.write(x) } as unknown as NodeJS.WriteStream }),
      },
      cliProgress.Presets.shades_classic,
    );
  }
  start(status: string): void {
    this.text = status;
    this.bar.start(100, 0, { status });
  }
  update(fraction: number, status: string): void {
    this.text = status;
    this.bar.update(Math.round(fraction * 100), { status });
  }
  stop(): void {
    this.bar.stop();
  }
}
