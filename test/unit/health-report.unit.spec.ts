import { describe, expect, it } from 'vitest';
import { describeError, forwardingReporter, Health } from '../../src/health.js';

describe('health registry: what /readyz says is failing', () => {
  it('a component is failing from its failure until it reports ok, with its latest error', () => {
    const health = new Health();
    const projector = health.reporter('projector/prisma-tables');
    expect(health.failing()).toEqual({});
    projector.failing(new Error('relation "winners" does not exist'));
    projector.failing(new Error('relation "entries" does not exist'));
    expect(health.failing()).toEqual({ 'projector/prisma-tables': 'relation "entries" does not exist' });
    projector.ok();
    expect(health.failing()).toEqual({});
  });

  it('a component with parts stays failing while any part fails', () => {
    const health = new Health();
    const writer = health.reporter('writer');
    writer.failing(new Error('p0 down'), 0);
    writer.failing(new Error('p1 down'), 1);
    writer.ok(0);
    expect(health.failing()).toEqual({ writer: 'p1 down' });
    writer.ok(1);
    expect(health.failing()).toEqual({});
  });

  it('components are told apart, and ok from one does not clear another', () => {
    const health = new Health();
    health.reporter('worker/agenda').failing('connect ECONNREFUSED 127.0.0.1:1');
    health.reporter('worker/triggers').ok();
    expect(health.failing()).toEqual({ 'worker/agenda': 'connect ECONNREFUSED 127.0.0.1:1' });
  });

  it('a reporter in another thread sends only changes: no message per healthy batch', () => {
    const sent: [string, string | null][] = [];
    const r = forwardingReporter((part, error) => void sent.push([part, error]));
    r.ok(0);
    r.ok(0);
    r.failing(new Error('READONLY'), 0);
    r.ok(0);
    r.ok(0);
    expect(sent).toEqual([
      ['0', 'READONLY'],
      ['0', null],
    ]);
  });
});

describe('an error as one short line without secrets', () => {
  it("keeps Prisma's last line, the one that says what went wrong", () => {
    const err = new Error(
      '\nInvalid `prisma.$queryRaw()` invocation:\n\n\nRaw query failed. Code: `42P01`. Message: `relation "winners" does not exist`',
    );
    expect(describeError(err)).toBe('Raw query failed. Code: `42P01`. Message: `relation "winners" does not exist`');
  });

  it('masks credentials in URLs and password settings', () => {
    expect(describeError(new Error('cannot reach postgresql://admin:hunter2@db:5432/firstcome'))).toBe(
      'cannot reach postgresql://***@db:5432/firstcome',
    );
    expect(describeError('bad dsn host=db password=hunter2 user=x')).toBe('bad dsn host=db password=*** user=x');
    expect(describeError(new Error('esdb://ops:pw@127.0.0.1:2113?tls=false refused'))).not.toContain('pw@');
  });

  it('names a refused connection to every address of a host, whose AggregateError has no message', () => {
    const err = new AggregateError([new Error('connect ECONNREFUSED ::1:5999'), new Error('connect ECONNREFUSED 127.0.0.1:5999')], '');
    expect(describeError(err)).toBe('connect ECONNREFUSED ::1:5999');
  });

  it('is at most 200 characters', () => {
    expect(describeError(new Error('x'.repeat(1000))).length).toBe(200);
  });
});
