/**
 * The processes `up` starts and `down` stops: pid files, whether a pid is still ours, spawning a
 * server detached from us, stopping it, and finding and running programs.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The command line of a pid, when /proc has it (Linux); undefined elsewhere. */
function cmdline(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return undefined;
  }
}

/** Is `pid` alive and (where we can tell) still the program we started? */
export function ours(pid: number, marker: string): boolean {
  if (!alive(pid)) return false;
  const cmd = cmdline(pid);
  return cmd === undefined || cmd.includes(marker);
}

export function tail(file: string, lines = 40): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

export function which(cmd: string, extraDirs: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), ...extraDirs];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Spawn a long-lived process detached from us, output appended to `logFile`. */
export function spawnDetached(cmd: string, args: string[], logFile: string, cwd: string) {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', fd, fd] });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: -1, signal: null }));
    });
    child.unref();
    return { child, exited };
  } finally {
    fs.closeSync(fd);
  }
}

export function run(argv: string[], cwd: string): { status: number | null; output: string } {
  const [cmd, ...args] = argv;
  const r = spawnSync(cmd!, args, { cwd, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

export async function stopPid(pid: number, marker: string, graceMs = 20_000): Promise<'stopped' | 'gone'> {
  if (!ours(pid, marker)) return 'gone';
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return 'stopped';
    await sleep(200);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* just went */
  }
  const hard = Date.now() + 5000;
  while (alive(pid) && Date.now() < hard) await sleep(100);
  return 'stopped';
}

/** What `down` did to one service's process: `gone` when it had already exited (or was no longer ours). */
export type Stopped = { status: 'stopped' | 'gone'; pid?: number };

/** Stop the process named by a pid file `up` wrote (when it is still ours) and remove the file. */
export async function stopByPidFile(pidFile: string, marker: string): Promise<Stopped> {
  const pid = readPid(pidFile);
  const status = pid === undefined ? 'gone' : await stopPid(pid, marker);
  fs.rmSync(pidFile, { force: true });
  return { status, pid };
}
