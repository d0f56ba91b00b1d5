import { readFileSync } from 'node:fs';
import type { PrismaClient } from '../src/infra/prisma/client.js';

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * CPU seconds spent meanwhile by this process (every thread) and by the Postgres backends serving
 * the bench's database (from /proc: Postgres runs on this machine). Wall time swings with whatever
 * else shares the cores; CPU per event is what a change to the projector moves.
 */
export async function withCpu<T>(
  prisma: PrismaClient,
  work: () => Promise<T>,
): Promise<{ job: T; cpu: { node: number; postgres: number } }> {
  const backends = async () => {
    const rows = await prisma.$queryRaw<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`;
    const ticks = new Map<number, number>();
    for (const { pid } of rows) {
      try {
        // utime and stime, fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 a second)
        const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        ticks.set(pid, Number(f[11]) + Number(f[12]));
      } catch {
        // a backend that ended meanwhile
      }
    }
    return ticks;
  };
  const pg0 = await backends();
  const node0 = process.cpuUsage();
  const job = await work();
  const node = process.cpuUsage(node0);
  const pg1 = await backends();
  let ticks = 0;
  for (const [pid, t] of pg1) ticks += t - (pg0.get(pid) ?? 0);
  return { job, cpu: { node: (node.user + node.system) / 1e6, postgres: ticks / 100 } };
}

export function cpuLine(cpu: { node: number; postgres: number }, events: number): string {
  const us = (s: number) => fmt((s * 1e6) / events, 1);
  return `${us(cpu.node)} µs / ${us(cpu.postgres)} µs (${fmt(cpu.node, 2)} s / ${fmt(cpu.postgres, 2)} s)`;
}
