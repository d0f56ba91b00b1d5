import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOC, CONFIG_SOURCE, parseConfigSource, renderConfigDoc } from '../../scripts/docs-config.js';
import { loadConfig } from '../../src/config.js';

const source = fs.readFileSync(CONFIG_SOURCE, 'utf8');

describe('docs/configuration.md', () => {
  it('is what `npm run docs:config` makes of src/config.ts', () => {
    const doc = fs.readFileSync(CONFIG_DOC, 'utf8');
    // on failure: run `npm run docs:config` and commit docs/configuration.md
    expect(doc).toBe(renderConfigDoc(source));
  });

  it('names every variable the loader reads, each with a description', () => {
    const names = parseConfigSource(source).map((v) => v.name);
    const loaded = Object.keys(loadConfig({ NODE_ENV: 'test' })).filter((k) => /^[A-Z][A-Z0-9_]*$/.test(k));
    expect(loaded.length).toBeGreaterThan(30);
    expect(names).toEqual(expect.arrayContaining(loaded));
    expect(new Set(names).size).toBe(names.length);
  });

  it('reads defaults as the loader applies them', () => {
    const byName = new Map(parseConfigSource(source).map((v) => [v.name, v]));
    const c = loadConfig({ NODE_ENV: 'test' }) as unknown as Record<string, unknown>;
    for (const name of [
      'PORT',
      'ENTER_WAIT_MS',
      'GRAPHQL_MAX_BODY_BYTES',
      'REDIS_RETENTION_HOURS',
      'GRAPHQL_MAX_COST',
      'JWT_JWKS_COOLDOWN_MS',
    ]) {
      expect(byName.get(name)?.defaultValue, name).toBe(String(c[name]));
    }
    expect(byName.get('KAFKA_COMPRESSION')?.defaultValue).toBe(c.KAFKA_COMPRESSION);
    expect(byName.get('REDIS_CLUSTER_NODES')?.defaultValue).toBe('unset');
  });
});
