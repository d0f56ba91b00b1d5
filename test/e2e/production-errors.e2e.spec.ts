import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keys } from '../../projections/redis-ordering/index.js';
import { gql, isolated, spawnApp, token, type AppProcess, type Isolated } from '../support/app.js';

/**
 * CONTRACT.md: `INTERNAL_SERVER_ERROR` (no stack trace in production). The unexpected failure is
 * real: the Redis key the gate reads for a campaign holds a string instead of a hash, so its Lua
 * script fails with WRONGTYPE.
 */
let iso: Isolated;
let app: AppProcess;

beforeAll(async () => {
  iso = await isolated('production_errors');
  app = await spawnApp(iso, 'api', { NODE_ENV: 'production' });
  const redis = new Redis(iso.config.REDIS_URL);
  await redis.set(new Keys(iso.config.REDIS_PREFIX).meta('broken'), 'not a hash');
  redis.disconnect();
});
afterAll(async () => {
  await app?.kill();
  await iso?.cleanup();
});

describe('a production server', () => {
  it('answers an unexpected failure with INTERNAL_SERVER_ERROR, a plain message and no stack trace', async () => {
    const res = await fetch(`http://127.0.0.1:${app.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await token('alice')}` },
      body: JSON.stringify({ query: `mutation { enter(campaignId: "broken") { rejection entry { ticket } } }` }),
    });
    const text = await res.text();
    const body = JSON.parse(text) as { data: unknown; errors: { message: string; extensions?: Record<string, unknown> }[] };
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]!.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
    expect(body.errors[0]!.message).toBe('internal server error');
    // nothing of the cause or of the code reaches the caller
    expect(text).not.toMatch(/stacktrace|WRONGTYPE|\.ts:\d+|node_modules|\bat \w+/);
    expect(body.data).toBeNull();
  });

  it('keeps serving after it', async () => {
    expect(await gql(app.port, await token('alice'), `{ __typename }`)).toEqual({ data: { __typename: 'Query' } });
    expect((await fetch(`http://127.0.0.1:${app.port}/healthz`)).status).toBe(200);
  });
});
