import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadGenerator, LoadPhase, LoadResult } from './generator.js';

const SCRIPT = fileURLToPath(new URL('./wrk.lua', import.meta.url));

/** Whether `wrk` is an executable on PATH (Debian: `apt-get install -y wrk`). */
export function wrkOnPath(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, 'wrk'), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * wrk 4.1, a C program, as its own process: ~10 µs of CPU per request where autocannon spends
 * 70-100 (`npm run bench`'s 'load gen' column). The tokens go to a file of the run's own, which
 * bench/load/wrk.lua reads once per thread. `bodies`, one per token, stand for the phase's body.
 */
export function wrkGenerator(tokens: string[], threads: number, bodies?: string[]): LoadGenerator {
  const dir = mkdtempSync(join(tmpdir(), 'firstcome-bench-'));
  const tokensFile = join(dir, 'tokens');
  writeFileSync(tokensFile, `${tokens.join('\n')}\n`);
  const bodiesFile = join(dir, 'bodies');
  if (bodies) writeFileSync(bodiesFile, `${bodies.join('\n')}\n`);
  return {
    describe: `wrk, ${threads} thread${threads === 1 ? '' : 's'}`,
    run: async ({ url, connections, duration, body }: LoadPhase): Promise<LoadResult> => {
      // --timeout: autocannon's 10 s; wrk counts an answer slower than it as a timeout
      const args = [
        '-t',
        String(threads),
        '-c',
        String(connections),
        '-d',
        `${duration}s`,
        '--timeout',
        '10s',
        '-s',
        SCRIPT,
        `${url}/graphql`,
        '--',
        tokensFile,
        body,
        String(threads),
        String(connections),
        ...(bodies ? [bodiesFile] : []),
      ];
      const wrk = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      wrk.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      wrk.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const code = await new Promise<number | null>((resolve, reject) => wrk.once('error', reject).once('close', resolve));
      if (code !== 0) throw new Error(`wrk exited ${code}: ${stderr.trim() || stdout.trim()}`);
      return wrkResult(stdout);
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The JSON line bench/load/wrk.lua's done() writes, after wrk's own summary. */
interface WrkLine {
  requests: number;
  durationUs: number;
  sent: number;
  reused: number;
  non2xx: number;
  graphqlErrors: number;
  socketErrors: number;
  timeouts: number;
  p50Us: number;
  p99Us: number;
  samples: number;
  correctedP50Us: number;
  correctedP99Us: number;
  cpuTicks: number;
}
const FIELDS: (keyof WrkLine)[] = [
  'requests',
  'durationUs',
  'sent',
  'reused',
  'non2xx',
  'graphqlErrors',
  'socketErrors',
  'timeouts',
  'p50Us',
  'p99Us',
  'samples',
  'correctedP50Us',
  'correctedP99Us',
  'cpuTicks',
];

/**
 * A phase's result from wrk's stdout. The script undoes wrk's coordinated-omission correction of
 * its latency histogram; every answer within the timeout is one sample, so a count of samples
 * other than that means the histogram was not laid out as wrk 4.1's, and its percentiles would be
 * wrong: that throws rather than print them.
 */
export function wrkResult(stdout: string): LoadResult {
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`wrk printed no result line (bench/load/wrk.lua's done()):\n${stdout}`);
  const raw = JSON.parse(line) as Record<string, unknown>;
  for (const f of FIELDS) if (typeof raw[f] !== 'number') throw new Error(`wrk's result line has no number ${f}: ${line}`);
  const r = raw as unknown as WrkLine;
  if (r.samples !== r.requests - r.timeouts) {
    throw new Error(
      `wrk's latency histogram holds ${r.samples} samples for ${r.requests - r.timeouts} answers within the timeout: not wrk 4.1's layout? (bench --generator autocannon measures without it)`,
    );
  }
  if (r.cpuTicks < 0) throw new Error('wrk could not read /proc/self/stat');
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    requests: r.requests,
    rps: r.requests / (r.durationUs / 1e6),
    p50: ms(r.p50Us),
    p99: ms(r.p99Us),
    errors: r.socketErrors + r.timeouts + r.non2xx + r.graphqlErrors,
    reused: r.reused,
    // clock ticks of 10 ms, as cpuMsOf (bench/procCpu.ts)
    cpuMs: r.cpuTicks * 10,
  };
}
