import { createHash } from 'node:crypto';
import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  jsonEvent,
  NO_STREAM,
  START,
  StreamNotFoundError,
  type AppendExpectedRevision,
  type AppendResult,
  type EventData,
  type JSONType,
} from '@eventstore/db-client';
import { isCampaignEvent, type Logged } from '../../domain/events.js';

/**
 * The one place that maps campaign events to EventStoreDB events and back. A campaign's events go
 * to the stream `campaign-<id>`, in log order, each with its place in the log in the metadata.
 * The ESDB event id is a UUID v5 of the event's own eventId, so an append repeated after a crash is
 * recognised by ESDB's idempotence check instead of written twice.
 */

/** Namespace of the archive's event ids. Fixed forever: changing it changes every archived id. */
export const ARCHIVE_NAMESPACE = '6f1c3b9e-2d47-4c8a-b5e0-93a7d2f41c68';

/** RFC 4122 name-based UUID, version 5 (SHA-1). */
export function uuidV5(name: string, namespace: string = ARCHIVE_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (ns.length !== 16) throw new Error(`not a UUID: ${namespace}`);
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const streamOf = (campaignId: string) => `campaign-${campaignId}`;

/** Where the event stands in the Kafka log; offsets travel as strings (JSON has no 64-bit integers). */
export interface ArchiveMetadata {
  partition: number;
  offset: string;
  eventId: string;
  /** the log it was archived from (`identityKey`); absent in events archived before identities */
  log?: string;
}

/**
 * The log an archive follows: its identity (written on every event) and its genesis id. Within a
 * log with a genesis id, the ESDB id is made of both, so a new log's event with an old event's id
 * is not taken for a repeat of it by ESDB's idempotence check (a log without one keeps the ids it
 * always had, so an upgrade re-archives nothing twice).
 */
export interface ArchiveLog {
  tag: string;
  logId: string | null;
}

export function toEventData(logged: Logged, log?: ArchiveLog): EventData {
  const { event, partition, offset } = logged;
  const metadata: ArchiveMetadata = { partition, offset: offset.toString(), eventId: event.eventId, ...(log && { log: log.tag }) };
  return jsonEvent({
    id: uuidV5(log?.logId ? `${log.logId}/${event.eventId}` : event.eventId),
    type: event.type,
    data: event as unknown as JSONType,
    metadata: metadata as unknown as JSONType,
  });
}

function isMetadata(m: unknown): m is ArchiveMetadata {
  if (typeof m !== 'object' || m === null) return false;
  const v = m as Record<string, unknown>;
  return Number.isInteger(v.partition) && typeof v.offset === 'string' && /^\d+$/.test(v.offset);
}

/** An archived event back as the log had it; null for anything this archive did not write. */
export function fromRecorded(recorded: { type: string; data: unknown; metadata: unknown }): Logged | null {
  const { data, metadata } = recorded;
  if (!isCampaignEvent(data) || data.type !== recorded.type || !isMetadata(metadata)) return null;
  return { event: data, partition: metadata.partition, offset: BigInt(metadata.offset) };
}

export function createEventStore(url: string): EventStoreDBClient {
  return EventStoreDBClient.connectionString(url);
}

export interface StreamTail {
  /** revision of the stream's last event, or no_stream */
  revision: bigint | typeof NO_STREAM;
  /** log offset of the last archived event (-1 when none) */
  offset: bigint;
  /** the log the last event was archived from (ArchiveMetadata.log); null when none is recorded */
  log: string | null;
}

/** The last event of a campaign's stream: where the archive stands. */
export async function streamTail(client: EventStoreDBClient, campaignId: string): Promise<StreamTail> {
  try {
    for await (const r of client.readStream(streamOf(campaignId), { direction: BACKWARDS, fromRevision: END, maxCount: 1 })) {
      if (!r.event) continue;
      const l = fromRecorded(r.event);
      const m = r.event.metadata as { log?: unknown } | undefined;
      return { revision: r.event.revision, offset: l?.offset ?? -1n, log: typeof m?.log === 'string' ? m.log : null };
    }
  } catch (err) {
    if (!(err instanceof StreamNotFoundError)) throw err;
  }
  return { revision: NO_STREAM, offset: -1n, log: null };
}

export function appendToCampaign(
  client: EventStoreDBClient,
  campaignId: string,
  events: readonly Logged[],
  expectedRevision: AppendExpectedRevision,
  log?: ArchiveLog,
): Promise<AppendResult> {
  return client.appendToStream(
    streamOf(campaignId),
    events.map((l) => toEventData(l, log)),
    { expectedRevision },
  );
}

/**
 * A campaign's archived events in log order, as a replay's source. Yields nothing for a campaign
 * the archive never saw.
 */
export async function* readCampaignEvents(client: EventStoreDBClient, campaignId: string): AsyncGenerator<Logged> {
  try {
    for await (const r of client.readStream(streamOf(campaignId), { direction: FORWARDS, fromRevision: START })) {
      const l = r.event && fromRecorded(r.event);
      if (l) yield l;
    }
  } catch (err) {
    if (!(err instanceof StreamNotFoundError)) throw err;
  }
}
