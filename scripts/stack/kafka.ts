/**
 * Kafka: reuse the broker at KAFKA_BROKERS when it answers; otherwise start a single-node KRaft
 * broker on this machine, wait until it answers and warm its coordinators.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { KAFKA_VERSION, clusterIdAt, ensureKafkaLibs, formatLogDir, javaBin } from './kafkaLibs.js';
import { kafkaServerProperties } from './kafkaProperties.js';
import { lock } from './lock.js';
import type { Paths } from './paths.js';
import { isLocal, tcpOpen, withTimeout } from './probe.js';
import { alive, ours, readPid, spawnDetached, stopByPidFile, tail, type Stopped } from './process.js';
import { ServiceError, type ServiceResult } from './results.js';

export const DEFAULT_KAFKA_BROKERS = '127.0.0.1:9092';
/** The broker's main class: it is on the broker's command line, which is how a pid is known to be ours. */
const KAFKA_MAIN = 'kafka.Kafka';

function kafkaBrokers(env: NodeJS.ProcessEnv): string[] {
  return (env.KAFKA_BROKERS ?? DEFAULT_KAFKA_BROKERS)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function splitHostPort(hp: string, defaultPort: number): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(hp);
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : defaultPort };
  const i = hp.lastIndexOf(':');
  if (i < 0) return { host: hp || '127.0.0.1', port: defaultPort };
  return { host: hp.slice(0, i) || '127.0.0.1', port: Number(hp.slice(i + 1)) || defaultPort };
}

/** Does a Kafka broker at `brokers` answer a metadata request? */
export async function kafkaAnswers(brokers: string[], timeoutMs = 3000): Promise<boolean> {
  const kafka = new Kafka({
    clientId: 'firstcome-stack',
    brokers,
    connectionTimeout: Math.min(1000, timeoutMs),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    const cluster = await withTimeout(
      (async () => {
        await admin.connect();
        return admin.describeCluster();
      })(),
      timeoutMs,
      'kafka describeCluster',
    );
    return cluster.brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** `readyTimeoutMs`: how long a started broker may take to answer; default 60 s (90 s when its log dir is new). */
export async function upKafka(
  p: Paths,
  env: NodeJS.ProcessEnv,
  readyTimeoutMs: number | undefined,
  log: (l: string) => void,
): Promise<Omit<ServiceResult, 'seconds'>> {
  const brokers = kafkaBrokers(env);
  const first = brokers[0] ?? DEFAULT_KAFKA_BROKERS;
  const { host, port } = splitHostPort(first, 9092);
  const address = `${host}:${port}`;
  if (await kafkaAnswers(brokers, 2500)) {
    // the jars are fetched even where a broker already runs: tests start private brokers from them
    // (a clean clone beside a running broker had none, and its first private broker raced Maven)
    if (isLocal(host)) await ensureKafkaLibs(p, log);
    return { name: 'kafka', status: 'reused', address };
  }

  const release = await lock(p.lockFile('kafka'));
  try {
    // Someone (another `up`, or a broker we started earlier that is still booting) may have won the race.
    const pidFile = p.pidFile('kafka');
    const prev = readPid(pidFile);
    if (prev !== undefined && ours(prev, KAFKA_MAIN)) {
      if (await waitKafka(brokers, readyTimeoutMs ?? 60_000, undefined)) {
        return { name: 'kafka', status: 'reused', address, detail: `pid ${prev}` };
      }
      throw new ServiceError(
        `kafka pid ${prev} (from an earlier stack:up) runs but does not answer on ${address}; see ${path.relative(p.root, p.kafkaLog)} or run stack:down`,
      );
    }
    if (prev !== undefined) fs.rmSync(pidFile, { force: true });
    if (await kafkaAnswers(brokers, 2500)) return { name: 'kafka', status: 'reused', address };

    if (!isLocal(host)) {
      throw new ServiceError(
        `KAFKA_BROKERS points at ${address}, which does not answer, and is not this machine: start that broker, or unset KAFKA_BROKERS`,
      );
    }
    if (await tcpOpen(host, port)) {
      throw new ServiceError(`something listens on ${address} but does not answer as a Kafka broker; free the port or set KAFKA_BROKERS`);
    }
    const controllerPort = Number(env.KAFKA_CONTROLLER_PORT ?? port + 1);
    if (await tcpOpen(host, controllerPort)) {
      throw new ServiceError(`the KRaft controller port ${host}:${controllerPort} is taken; free it or set KAFKA_CONTROLLER_PORT`);
    }

    const java = javaBin(env);
    const libs = await ensureKafkaLibs(p, log);
    const cp = `${p.kafkaLibs}${path.sep}*`;

    fs.mkdirSync(p.kafkaData, { recursive: true });
    fs.writeFileSync(p.kafkaProps, kafkaServerProperties({ host, port, controllerPort, dataDir: p.kafkaData }));
    const fresh = formatLogDir(p, java, p.kafkaProps, p.kafkaData, clusterIdAt(p.kafkaClusterId), 'the KRaft log dir');

    fs.appendFileSync(p.kafkaLog, `\n===== stack:up ${new Date().toISOString()} Kafka ${KAFKA_VERSION} on ${address} =====\n`);
    const { child, exited } = spawnDetached(
      java,
      [
        '-Xmx512m',
        '-Xms256m',
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-XX:+ExitOnOutOfMemoryError',
        '-Djava.awt.headless=true',
        `-Dlog4j.configuration=file:${p.kafkaLog4j}`,
        `-Dkafka.logs.dir=${p.kafkaDir}`,
        '-cp',
        cp,
        KAFKA_MAIN,
        p.kafkaProps,
      ],
      p.kafkaLog,
      p.root,
    );
    const pid = child.pid;
    if (pid === undefined) throw new ServiceError(`could not start ${java}`);
    fs.writeFileSync(pidFile, `${pid}\n`);
    const timeout = readyTimeoutMs ?? (fresh ? 90_000 : 60_000);
    const ok = await waitKafka(brokers, timeout, exited);
    if (!ok) {
      const died = !alive(pid);
      if (!died) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      fs.rmSync(pidFile, { force: true });
      throw new ServiceError(
        `Kafka ${died ? 'exited' : `did not answer within ${Math.round(timeout / 1000)} s`}; last lines of ${path.relative(p.root, p.kafkaLog)}:\n${tail(p.kafkaLog)}`,
      );
    }
    const warm = await warmKafka(brokers);
    return {
      name: 'kafka',
      status: 'started',
      address,
      pid,
      detail: `Kafka ${KAFKA_VERSION}${libs === 'downloaded' ? ', fetched with Maven' : ''}${fresh ? ', new log dir' : ''}${warm ? '' : ', coordinators still loading'}`,
    };
  } finally {
    release();
  }
}

/**
 * Touch the group and transaction coordinators once, so the broker creates and loads
 * __consumer_offsets and __transaction_state now rather than on the app's first request
 * (where KafkaJS would log "coordinator is loading" and retry). Best effort.
 */
async function warmKafka(brokers: string[], timeoutMs = 30_000): Promise<boolean> {
  const kafka = new Kafka({
    clientId: 'firstcome-stack',
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 200 },
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ transactionalId: 'firstcome-stack-warmup', idempotent: true, maxInFlightRequests: 1 });
  try {
    await withTimeout(
      (async () => {
        await admin.connect();
        await admin.describeGroups(['firstcome-stack-warmup']);
        await producer.connect();
      })(),
      timeoutMs,
      'kafka warm-up',
    );
    return true;
  } catch {
    return false;
  } finally {
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

async function waitKafka(brokers: string[], timeoutMs: number, exited: Promise<unknown> | undefined): Promise<boolean> {
  let dead = false;
  void exited?.then(() => (dead = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (dead) return false;
    if (await kafkaAnswers(brokers, 2000)) return true;
    await sleep(400);
  }
  return false;
}

export function downKafka(p: Paths): Promise<Stopped> {
  return stopByPidFile(p.pidFile('kafka'), KAFKA_MAIN);
}
