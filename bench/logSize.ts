import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { javaBin } from '../scripts/stack/kafkaLibs.js';
import { paths } from '../scripts/stack/paths.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The bytes `topic` takes in the brokers' log dirs, every partition and replica, as the brokers
 * report them (DescribeLogDirs, through Kafka's Java admin client from the broker's jars: KafkaJS has
 * no such call). Record batch headers and transaction markers count: what a codec saves on disk.
 */
export async function topicBytes(brokers: readonly string[], topic: string): Promise<number> {
  const { stdout } = await promisify(execFile)(
    javaBin(process.env),
    ['-cp', `${paths(ROOT).kafkaLibs}/*`, fileURLToPath(new URL('java/TopicSize.java', import.meta.url)), brokers.join(','), topic],
    { timeout: 60_000 },
  );
  return Number(stdout.trim());
}

/** `topicBytes` once the topic stops growing (the single writer commits its decisions after the load stops). */
export async function settledTopicBytes(brokers: readonly string[], topic: string, timeoutMs = 60_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  let last = await topicBytes(brokers, topic);
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await topicBytes(brokers, topic);
    if (now === last || Date.now() > end) return now;
    last = now;
  }
}

/**
 * The pid of the process listening on `port` on this machine (from /proc/net/tcp* and the processes'
 * sockets), to read a broker's CPU where no pid file of ours names it (a broker another checkout started).
 */
export function pidListeningOn(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        // local address hex:PORT, state 0A = LISTEN, inode in column 10
        if (f.length > 9 && f[3] === '0A' && parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!);
      }
    } catch {
      /* no such table */
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(pid);
      }
    } catch {
      /* gone, or not ours to read */
    }
  }
  return undefined;
}
