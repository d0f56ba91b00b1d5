import { createRequire } from 'node:module';
import { randomBytes, randomUUID } from 'node:crypto';
import { Command } from 'commander';
import { table } from '../src/cli/crowd.js';
import { mintGifticonCode, mintGifticonId } from '../src/domain/codes.js';
import { eventIds, EVENT_VERSION, ticketOf, type CampaignEvent } from '../src/domain/events.js';
import { toMessage } from '../src/infra/kafka/codec.js';
import { COMPRESSIONS, compressionType, unavailable, type Compression } from '../src/infra/kafka/compression.js';

/**
 * `npm run bench:codecs`: each usable KAFKA_COMPRESSION on record batches of this log's own events,
 * encoded by KafkaJS as a producer sends them, at the batch sizes the API's group commit makes (1 in
 * a quiet moment, tens to a thousand in a burst): bytes per record on the wire and on disk, and the
 * CPU a Node process spends per record to compress a batch and to decompress it. In one process,
 * without servers, so the codecs compare on a shared machine; `npm run bench -- --compression` gives
 * the end-to-end figures (server and broker CPU, the log's bytes per entry).
 */
const opts = new Command()
  .option('--sizes <list>', 'records per batch', '1,10,100,1000')
  .option('--records <n>', 'records compressed per codec and size', (v) => Number(v), 100_000)
  .parse()
  .opts<{ sizes: string; records: number }>();

// KafkaJS's own record batch encoder, as its producer uses it (not part of its typed API)
const requireCjs = createRequire(import.meta.url);
type Encoder = { buffer: Buffer };
const { RecordBatch } = requireCjs('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (b: { compression: number; records: Encoder[] }) => Promise<Encoder>;
};
const Record = requireCjs('kafkajs/src/protocol/recordBatch/record/v0') as (r: {
  offsetDelta: number;
  key: Buffer;
  value: Buffer;
  headers: Record<string, Buffer>;
}) => Encoder;
const { lookupCodec } = requireCjs('kafkajs/src/protocol/message/compression') as {
  lookupCodec: (t: number) => { decompress: (b: Buffer) => Promise<Buffer> };
};
// and its decoder of a fetched record batch, as every consumer runs it
const Decoder = requireCjs('kafkajs/src/protocol/decoder') as new (b: Buffer) => unknown;
const decodeBatch = requireCjs('kafkajs/src/protocol/recordBatch/v0/decoder') as (d: unknown) => Promise<{ records: unknown[] }>;

const run = randomBytes(3).toString('hex');
const campaignId = `bench-open-${run}`;
const instance = `${run}-${process.pid}`;
const at = () => new Date().toISOString();
/** The events of one fresh entry, as the API and the single writer append them. */
function entry(i: number): { entrant: CampaignEvent; decisions: CampaignEvent[] } {
  const userId = `b${run}-${i}`;
  const base = { version: EVENT_VERSION, campaignId, occurredAt: at() } as const;
  const request = randomUUID();
  return {
    entrant: {
      ...base,
      type: 'EntrantRegistered',
      eventId: `entrant:${campaignId}:${userId}:${request}`,
      userId,
      replyTo: { instance, request },
    },
    decisions: [
      {
        ...base,
        type: 'WinnerSelected',
        eventId: eventIds.winner(campaignId, userId),
        userId,
        position: i + 1,
        ticket: ticketOf(0, BigInt(i + 2)),
      },
      {
        ...base,
        type: 'GifticonIssued',
        eventId: eventIds.gifticon(campaignId, userId),
        userId,
        gifticonId: mintGifticonId(),
        code: mintGifticonCode(),
        position: i + 1,
      },
    ],
  };
}

/** `headers`: as toMessage writes them, or the `type` and `eventId` every record carried before */
const records = (events: CampaignEvent[], headers: 'written' | 'type+eventId' = 'written'): Encoder[] =>
  events.map((e, offsetDelta) => {
    const m = toMessage(e, 6);
    const h = headers === 'written' ? (m.headers ?? {}) : { type: e.type, eventId: e.eventId };
    return Record({
      offsetDelta,
      key: Buffer.from(m.key as string),
      value: Buffer.from(m.value as string),
      headers: Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Buffer.from(String(v))])),
    });
  });

/** CPU per record of KafkaJS's decoding of whole record batches (decompression included), as a consumer's fetch runs it. */
async function decodeUs(codec: Compression, batches: Encoder[][]): Promise<number> {
  const encoded: Buffer[] = [];
  for (const b of batches) encoded.push((await RecordBatch({ compression: compressionType(codec), records: b })).buffer);
  for (const e of encoded.slice(0, 20)) await decodeBatch(new Decoder(e));
  const t0 = process.cpuUsage();
  let count = 0;
  for (const e of encoded) count += (await decodeBatch(new Decoder(e))).records.length;
  const c = process.cpuUsage(t0);
  return (c.user + c.system) / count;
}

async function measure(codec: Compression, batches: Encoder[][]) {
  const type = compressionType(codec);
  let bytes = 0;
  let count = 0;
  const t0 = process.cpuUsage();
  const encoded: Buffer[] = [];
  for (const b of batches) {
    const batch = await RecordBatch({ compression: type, records: b });
    bytes += batch.buffer.length;
    count += b.length;
    encoded.push(batch.buffer);
  }
  const c = process.cpuUsage(t0);
  let decompressUs = 0;
  if (codec !== 'none') {
    // the compressed records follow the batch's 61-byte header (offset, length, …, record count)
    const sections = encoded.map((b) => b.subarray(61));
    const d0 = process.cpuUsage();
    for (const s of sections) await lookupCodec(type).decompress(s);
    const d = process.cpuUsage(d0);
    decompressUs = d.user + d.system;
  }
  return { bytes: bytes / count, encodeUs: (c.user + c.system) / count, decodeUs: decompressUs / count };
}

async function main() {
  const usable = COMPRESSIONS.filter((c) => !unavailable(c));
  const sizes = opts.sizes.split(',').map(Number);
  const rows: (string | number)[][] = [];
  for (const [kind, pick] of [
    ['EntrantRegistered (API appender)', (i: number) => [entry(i).entrant]],
    ['WinnerSelected + GifticonIssued (writer)', (i: number) => entry(i).decisions],
  ] as const) {
    for (const size of sizes) {
      // one set of batches per size, compressed by every codec in turn
      const batches: Encoder[][] = [];
      for (let n = 0; n < opts.records; n += size) {
        batches.push(
          records(
            Array.from({ length: Math.ceil(size / pick(0).length) }, (_, j) => pick(n + j))
              .flat()
              .slice(0, size),
          ),
        );
      }
      // warm-up: the JIT and the native bindings
      for (const codec of usable) await measure(codec, batches.slice(0, 20));
      const results = new Map<Compression, Awaited<ReturnType<typeof measure>>>();
      for (const codec of usable) results.set(codec, await measure(codec, batches));
      const none = results.get('none')!;
      for (const codec of usable) {
        const r = results.get(codec)!;
        rows.push([kind, size, codec, r.bytes.toFixed(1), (r.bytes / none.bytes).toFixed(2), r.encodeUs.toFixed(2), r.decodeUs.toFixed(2)]);
      }
      process.stdout.write(`${kind}, ${size} per batch: done\n`);
    }
  }
  process.stdout.write(
    `\n${table([['records', 'per batch', 'codec', 'bytes/record', 'x none', 'encode µs/record', 'decompress µs/record'], ...rows])}\n`,
  );

  // what a record's headers cost every reader: an entry's record as written (none), and with the two it carried before
  const size = sizes.at(-1)!;
  const decodeRows: (string | number)[][] = [];
  for (const codec of usable.filter((c) => c === 'none' || c === 'snappy')) {
    const us = new Map<string, number>();
    for (const headers of ['type+eventId', 'written', 'type+eventId', 'written'] as const) {
      const batches: Encoder[][] = [];
      for (let n = 0; n < opts.records; n += size)
        batches.push(
          records(
            Array.from({ length: size }, (_, j) => entry(n + j).entrant),
            headers,
          ),
        );
      // the second of two rounds, each after the other's: the JIT has seen both
      us.set(headers, await decodeUs(codec, batches));
    }
    decodeRows.push([
      codec,
      size,
      us.get('type+eventId')!.toFixed(2),
      us.get('written')!.toFixed(2),
      (us.get('written')! / us.get('type+eventId')!).toFixed(2),
    ]);
  }
  process.stdout.write(
    `\nKafkaJS decoding an EntrantRegistered record batch (decompression included), CPU per record:\n${table([['codec', 'per batch', 'µs, headers type + eventId (before)', 'µs, as written (no headers)', 'x before'], ...decodeRows])}\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
