import { Kafka, logLevel } from 'kafkajs';
import type { Config } from '../../src/config.js';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';
import { gql } from './app.js';

/**
 * Waiting on a condition with a deadline, never on a fixed sleep: a busy 2-core box makes any
 * fixed delay either too short (flaky) or long enough to hide a regression.
 */
export async function waitUntil<T>(
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  opts: { what: string; timeoutMs?: number; everyMs?: number },
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const r = await pollUntil(probe, ok, timeoutMs, opts.everyMs);
  if (!r.ok) throw new Error(`${opts.what}: not within ${timeoutMs} ms (last seen: ${show(r.value)})`);
  return r.value;
}

/**
 * Probes every `everyMs` until `ok` holds or `timeoutMs` has passed: the last value seen, and
 * whether it held. `waitUntil` throws when it did not; `eventually` hands it to the test to assert.
 */
export async function pollUntil<T>(
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs: number,
  everyMs = 100,
): Promise<{ value: T; ok: boolean }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return { value, ok: true };
    if (Date.now() > end) return { value, ok: false };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `waitUntil` for a probe whose last value, shown when the deadline passes, says what was awaited. */
export function waitFor<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  return waitUntil(probe, ok, { what: 'condition not met', timeoutMs });
}

/** The last value `probe` gave, once `ok` holds or after `timeoutMs`: the test asserts on it. */
export async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  return (await pollUntil(probe, ok, timeoutMs)).value;
}

/**
 * Lets `ms` of wall time pass, for what only time passing can show: that something did not
 * happen (a notice not heard, a retry not run), or that a window, a lease or a slow dependency
 * took its time. `why` names which, in the test's own words. Whatever a test waits *for* is
 * `waitUntil`'s.
 */
export async function elapse(ms: number, why: string): Promise<void> {
  if (!why) throw new Error('elapse: say why time must pass');
  await new Promise((r) => setTimeout(r, ms));
}

function show(v: unknown): string {
  try {
    return (
      JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? String(x) : x instanceof Map ? Object.fromEntries(x) : x))?.slice(0, 500) ??
      String(v)
    );
  } catch {
    return String(v);
  }
}

const admins = new WeakMap<Config, Kafka>();
function kafkaOf(config: Config): Kafka {
  let k = admins.get(config);
  if (!k) admins.set(config, (k = new Kafka({ clientId: 'test-wait', brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING })));
  return k;
}

/** The end offset (high watermark) of each partition of the events topic. */
export async function logEnds(config: Config): Promise<Map<number, bigint>> {
  const admin = kafkaOf(config).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(config.topics.events);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

/** The end offset of the partition that holds one campaign. */
export async function campaignLogEnd(config: Config, campaignId: string): Promise<bigint> {
  return (await logEnds(config)).get(partitionFor(campaignId, config.EVENT_PARTITIONS)) ?? 0n;
}

/** The offsets a consumer group has committed on the events topic (-1 where it has none). */
export async function groupOffsets(config: Config, groupId: string): Promise<Map<number, bigint>> {
  const admin = kafkaOf(config).admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [config.topics.events] });
    return new Map((t?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Resolves once the group has committed every partition up to the end the log has now, like
 * Emmett's `whenCaughtUp`. `oneShort` is for the writer's group: its last read is often its own
 * transaction, whose commit marker (the partition's last offset) no consumer is handed, so it rests
 * one short of the end.
 */
export async function whenCaughtUp(config: Config, groupId: string, opts: { timeoutMs?: number; oneShort?: boolean } = {}): Promise<void> {
  const ends = await logEnds(config);
  const slack = opts.oneShort ? 1n : 0n;
  await waitUntil(
    () => groupOffsets(config, groupId),
    (done) => [...ends].every(([p, end]) => end === 0n || (done.get(p) ?? -1n) >= end - slack),
    { what: `${groupId} caught up with ${show(ends)}`, timeoutMs: opts.timeoutMs ?? 60_000 },
  );
}

export interface DecidedEntry {
  status: 'WON' | 'LOST';
  position: number;
  ticket: string;
  gifticon: { code: string } | null;
}

/** Reads `myEntry` until the writer has decided it (`enter` may have answered `QUEUED`). */
export async function decidedEntry(port: number, auth: string, campaignId: string, timeoutMs = 30_000): Promise<DecidedEntry> {
  const r = await waitUntil(
    () => gql(port, auth, `query($c: ID!) { myEntry(campaignId: $c) { status position ticket gifticon { code } } }`, { c: campaignId }),
    (r) => r.data?.myEntry?.status === 'WON' || r.data?.myEntry?.status === 'LOST',
    { what: `the entry in ${campaignId} decided`, timeoutMs },
  );
  return r.data!.myEntry as DecidedEntry;
}
