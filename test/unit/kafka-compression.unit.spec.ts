import { CompressionTypes } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { COMPRESSIONS, compressionType, unavailable } from '../../src/infra/kafka/compression.js';

const load = (KAFKA_COMPRESSION: string) => loadConfig({ NODE_ENV: 'test', KAFKA_COMPRESSION });
const usable = COMPRESSIONS.filter((c) => !unavailable(c));

describe('KAFKA_COMPRESSION at config load', () => {
  it('refuses a value that names no codec, naming the variable and the allowed values', () => {
    for (const bad of ['brotli', 'lz', 'gzip,lz4']) {
      expect(() => load(bad), bad).toThrow(ConfigError);
      expect(() => load(bad), bad).toThrow(/KAFKA_COMPRESSION: expected one of none, gzip, lz4, snappy, zstd/);
    }
  });

  it('offers gzip (KafkaJS its own) and lz4 and snappy (dependencies) on every machine that installed firstcome', () => {
    expect(usable).toEqual(expect.arrayContaining(['none', 'gzip', 'lz4', 'snappy']));
    for (const c of usable) expect(load(c).KAFKA_COMPRESSION).toBe(c);
  });

  it('refuses a codec whose package does not load here, naming the package and what is usable instead', () => {
    const missing = COMPRESSIONS.filter((x) => unavailable(x));
    // zstd's package is no dependency (compression.ts says why): a clean install lacks it
    expect(missing).toContain('zstd');
    for (const c of missing) {
      expect(() => load(c), c).toThrow(
        new RegExp(`KAFKA_COMPRESSION: ${c} needs the KafkaJS codec package \\S+, which is not installed; use one of ${usable.join(', ')}`),
      );
    }
  });

  it('takes any case and surrounding spaces, and an empty value as the default', () => {
    expect(load(' LZ4 ').KAFKA_COMPRESSION).toBe('lz4');
    expect(load('').KAFKA_COMPRESSION).toBe(loadConfig({ NODE_ENV: 'test' }).KAFKA_COMPRESSION);
  });

  it('maps each codec to the compression type its record batches carry', () => {
    expect(COMPRESSIONS.map(compressionType)).toEqual([
      CompressionTypes.None,
      CompressionTypes.GZIP,
      CompressionTypes.LZ4,
      CompressionTypes.Snappy,
      CompressionTypes.ZSTD,
    ]);
  });
});
