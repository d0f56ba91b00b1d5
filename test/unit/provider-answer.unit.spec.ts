import { describe, expect, it } from 'vitest';
import { classify, retryAfterMs } from '../../src/issuer/provider.js';

const voucher = JSON.stringify({ voucherId: 'v_1', code: '1234-5678-9012-3456', expiresAt: '2027-03-01T00:00:00.000Z' });

describe("the provider's answers, classified", () => {
  it('a 200 or 201 with a voucher is issued', () => {
    for (const status of [200, 201]) {
      expect(classify(status, null, voucher)).toEqual({
        kind: 'issued',
        voucher: { voucherId: 'v_1', code: '1234-5678-9012-3456', expiresAt: '2027-03-01T00:00:00.000Z' },
      });
    }
  });

  it('a 2xx that is not a voucher is asked again with the same key, and its detail never repeats the body', () => {
    const a = classify(201, null, JSON.stringify({ voucherId: 'v_1', code: 'SECRET-CODE-1' }));
    expect(a).toMatchObject({ kind: 'transient', reason: 'bad-answer', status: 201 });
    expect(JSON.stringify(a)).not.toContain('SECRET-CODE-1');
    expect(classify(200, null, 'not json')).toMatchObject({ kind: 'transient', reason: 'bad-answer' });
  });

  it('408, 409, 429 and 5xx are transient; 429 carries its Retry-After', () => {
    expect(classify(429, '2', '')).toMatchObject({ kind: 'transient', reason: 'rate-limited', retryAfterMs: 2000 });
    expect(classify(408, null, '')).toMatchObject({ kind: 'transient', reason: 'request-timeout' });
    expect(classify(409, null, '')).toMatchObject({ kind: 'transient', reason: 'conflict' });
    for (const status of [500, 502, 503, 504])
      expect(classify(status, null, '')).toMatchObject({ kind: 'transient', reason: 'server', status });
  });

  it("every other 4xx is permanent and carries the provider's answer, cut to 1000 characters", () => {
    for (const status of [400, 401, 403, 404, 410, 422]) {
      expect(classify(status, null, '{"error":"recipient_not_eligible"}')).toEqual({
        kind: 'permanent',
        status,
        answer: '{"error":"recipient_not_eligible"}',
      });
    }
    const long = classify(422, null, 'x'.repeat(5000));
    expect(long.kind === 'permanent' && long.answer.length).toBe(1000);
  });
});

describe('Retry-After', () => {
  it('reads delay-seconds and HTTP-dates, and nothing else', () => {
    const now = Date.parse('2026-12-06T10:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Sun, 06 Dec 2026 10:00:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('Sun, 06 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs('-1', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});
