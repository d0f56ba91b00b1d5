import { createRequire } from 'node:module';
import kafkajs, { CompressionTypes } from 'kafkajs';

/**
 * Compression of the record batches firstcome appends (`KAFKA_COMPRESSION`). A batch carries its
 * codec in its attributes, and the broker keeps what the producer wrote (the topics leave
 * `compression.type` at `producer`), so a log may hold batches of every codec a process was ever
 * configured with: every process registers every codec it can load, and reads them all.
 *
 * KafkaJS compresses gzip itself; lz4, snappy and zstd come from KafkaJS codec packages. The package
 * of a codec can be missing or fail to load (a native binary for another platform): such a codec is
 * refused at config load, never met first on the hot path.
 */
export const COMPRESSIONS = ['none', 'gzip', 'lz4', 'snappy', 'zstd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const requireCjs = createRequire(import.meta.url);

/** The codecs KafkaJS leaves to packages: which package, and how it hands over its codec. */
const packaged = {
  // lz4-napi: a prebuilt binary per platform, from the registry (no build at install)
  lz4: {
    type: CompressionTypes.LZ4,
    pkg: '@2l/kafkajs-lz4',
    load: () => new (requireCjs('@2l/kafkajs-lz4') as typeof import('@2l/kafkajs-lz4').default)().codec,
  },
  // pure JavaScript (snappyjs); reads the xerial framing the Java client writes, too
  snappy: { type: CompressionTypes.Snappy, pkg: 'kafkajs-snappy', load: () => requireCjs('kafkajs-snappy') as () => Codec },
  // not a dependency: its native binding (cppzst 2.0.6) does not compile against Node 20's headers
  // (README, Configuration); where an operator installs a build of it, it is used
  zstd: { type: CompressionTypes.ZSTD, pkg: '@kafkajs/zstd', load: () => (requireCjs('@kafkajs/zstd') as () => () => Codec)() },
} as const;

const loaded = new Map<keyof typeof packaged, { codec: () => Codec } | { error: string }>();

function load(name: keyof typeof packaged): { codec: () => Codec } | { error: string } {
  let got = loaded.get(name);
  if (!got) {
    const { pkg } = packaged[name];
    try {
      got = { codec: packaged[name].load() };
    } catch (err) {
      const why =
        (err as { code?: string }).code === 'MODULE_NOT_FOUND'
          ? 'is not installed'
          : `does not load here (${String((err as Error).message).split('\n')[0]})`;
      got = { error: `${name} needs the KafkaJS codec package ${pkg}, which ${why}` };
    }
    loaded.set(name, got);
  }
  return got;
}

/** Why `name` cannot be used in this process, or null when it can. */
export function unavailable(name: Compression): string | null {
  if (name === 'none' || name === 'gzip') return null;
  const got = load(name);
  return 'error' in got ? got.error : null;
}

/** The KafkaJS compression type a producer sends with. */
export function compressionType(name: Compression): CompressionTypes {
  if (name === 'none') return CompressionTypes.None;
  if (name === 'gzip') return CompressionTypes.GZIP;
  return packaged[name].type;
}

/**
 * Every codec this process can load goes into KafkaJS's process-wide table when this module loads
 * (config.ts imports it, so every process and worker thread that reads its config), so its
 * consumers read batches of any codec, whatever it sends with.
 */
for (const name of Object.keys(packaged) as (keyof typeof packaged)[]) {
  const got = load(name);
  // the table is not among the names Node's ESM loader finds in KafkaJS's CommonJS exports: through the default export
  if ('codec' in got) kafkajs.CompressionCodecs[packaged[name].type] = got.codec;
}
