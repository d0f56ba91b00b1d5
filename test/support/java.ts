import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { javaBin } from '../../scripts/stack/kafkaLibs.js';
import { paths } from '../../scripts/stack/paths.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface JavaRecord {
  partition: number;
  offset: bigint;
  value: string;
}

/**
 * What Kafka's own Java client (kafka-clients, from the broker's jars) reads of `topic`,
 * read_committed, from its start to its end: a cross-check of what KafkaJS wrote.
 */
export async function readWithJavaClient(brokers: string[], topic: string): Promise<JavaRecord[]> {
  const { stdout } = await promisify(execFile)(
    javaBin(process.env),
    ['-cp', `${paths(ROOT).kafkaLibs}/*`, fileURLToPath(new URL('java/ReadCommitted.java', import.meta.url)), brokers.join(','), topic],
    { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
  );
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [partition, offset, ...value] = line.split('\t');
      return { partition: Number(partition), offset: BigInt(offset!), value: value.join('\t') };
    });
}
