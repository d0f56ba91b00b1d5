import { execFile } from 'node:child_process';
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
