/** What running a broker needs on this machine: Apache Kafka's jars (from Maven Central, cached) and a Java. */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kafkaUuid } from './kafkaProperties.js';
import type { Paths } from './paths.js';
import { which } from './process.js';
import { ServiceError } from './results.js';

/** Keep in step with <kafka.version> in scripts/kafka/pom.xml. */
export const KAFKA_VERSION = '3.9.2';

function pomDigest(p: Paths): string {
  return createHash('sha256').update(fs.readFileSync(p.kafkaPom)).digest('hex');
}

/** Resolve the broker jars into .cache/kafka/libs with Maven, unless a complete copy is there. */
export async function ensureKafkaLibs(p: Paths, log: (l: string) => void): Promise<'cached' | 'downloaded'> {
  const digest = pomDigest(p);
  try {
    if (fs.readFileSync(p.kafkaMarker, 'utf8').trim() === digest) return 'cached';
  } catch {
    /* not there yet */
  }
  const mvn = which('mvn');
  if (!mvn) {
    throw new ServiceError(
      'Kafka is not running and Maven is needed to fetch it once: apt-get install maven (and a Java 17 JRE: apt-get install openjdk-17-jre-headless), or run a broker yourself and set KAFKA_BROKERS',
    );
  }
  log(`kafka     resolving Apache Kafka ${KAFKA_VERSION} from Maven Central into ${path.relative(p.root, p.kafkaLibs)} (first run only)…`);
  const tmp = `${p.kafkaLibs}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(p.kafkaCache, { recursive: true });
  const out = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(mvn, ['-q', '-B', '-f', p.kafkaPom, 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`], {
      cwd: p.root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', (e) => resolve({ code: -1, output: String(e) }));
    child.once('close', (code) => resolve({ code, output }));
  });
  const jars = fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((f) => f.endsWith('.jar')) : [];
  if (out.code !== 0 || !jars.some((j) => j.startsWith(`kafka_2.13-${KAFKA_VERSION}`))) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new ServiceError(`Maven could not resolve Kafka (exit ${out.code}):\n${out.output.split('\n').slice(-30).join('\n')}`);
  }
  fs.rmSync(p.kafkaLibs, { recursive: true, force: true });
  fs.renameSync(tmp, p.kafkaLibs);
  fs.writeFileSync(p.kafkaMarker, `${digest}\n`);
  return 'downloaded';
}

export function javaBin(env: NodeJS.ProcessEnv): string {
  const fromHome = env.JAVA_HOME ? path.join(env.JAVA_HOME, 'bin', 'java') : undefined;
  if (fromHome && fs.existsSync(fromHome)) return fromHome;
  const j = which('java');
  if (!j) {
    throw new ServiceError(
      'Kafka is not running and Java 17+ is needed to run one: apt-get install openjdk-17-jre-headless, or run a broker yourself and set KAFKA_BROKERS',
    );
  }
  return j;
}

/** The cluster id kept in `file`, made (and kept) on first use: every node of a cluster is formatted with it. */
export function clusterIdAt(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    const id = kafkaUuid();
    fs.writeFileSync(file, `${id}\n`);
    return id;
  }
}

/** Formats a KRaft log dir for `props`, unless it is formatted already. Returns whether it was new. */
export function formatLogDir(p: Paths, java: string, props: string, dataDir: string, clusterId: string, what: string): boolean {
  if (fs.existsSync(path.join(dataDir, 'meta.properties'))) return false;
  const fmt = spawnSync(
    java,
    [
      `-Dlog4j.configuration=file:${p.kafkaLog4j}`,
      '-Xmx256m',
      '-cp',
      `${p.kafkaLibs}${path.sep}*`,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      props,
      '--ignore-formatted',
    ],
    { cwd: p.root, encoding: 'utf8' },
  );
  if (fmt.status !== 0)
    throw new ServiceError(`formatting ${what} failed (exit ${fmt.status}):\n${(fmt.stdout ?? '') + (fmt.stderr ?? '')}`);
  return true;
}
