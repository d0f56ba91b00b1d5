import { spawn } from 'node:child_process';
import { once } from 'node:events';

/** The simulator's faults as `npm run provider:sim` takes them. */
export interface SimFlags {
  latencyMs: number;
  rate: number;
  errorRate: number;
  timeoutRate: number;
  permanentRate: number;
}

/**
 * `npm run provider:sim` in a process of its own on a free port, as a provider is: its CPU is not
 * the bench's. Resolves once it prints its URL.
 */
export async function startSimProcess(f: SimFlags): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const args = ['--port', '0', '--latency-ms', f.latencyMs, '--rate', f.rate, '--error-rate', f.errorRate];
  args.push('--timeout-rate', f.timeoutRate, '--permanent-rate', f.permanentRate);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/providerSim.ts', ...args.map(String)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const end = Date.now() + 30_000;
  let m: RegExpExecArray | null;
  while (!(m = /provider simulator on (\S+):/.exec(out))) {
    if (Date.now() > end || child.exitCode !== null) {
      child.kill('SIGTERM');
      throw new Error(`the simulator did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: m[1]!,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}
