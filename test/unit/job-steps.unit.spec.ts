import type { JobParameters } from 'agenda';
import { describe, expect, it } from 'vitest';
import { closedSince } from '../../batch/cleanup.js';
import { jobView } from '../../batch/jobView.js';
import { nearlyReached } from '../../batch/logPosition.js';
import { countsOfFolded, differences, digestWinners, foldLog, type Folded } from '../../batch/reconcile.js';
import { affectedPartitions, weightedProgress } from '../../batch/replay.js';
import { addChunk } from '../../batch/report.js';
import { cryptoMinter, decide, evolve, initialState, replay, type CampaignState } from '../../src/domain/campaign.js';
import { EVENT_VERSION, type CampaignEvent, type Logged } from '../../src/domain/events.js';
import { memoryCodes } from '../support/codes.js';
import { partitionFor } from '../../src/infra/kafka/partitioning.js';

const T0 = Date.parse('2026-11-25T09:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('jobView: Agenda timestamps → the contract Job', () => {
  const base = { _id: 'j1', name: 'replay', priority: 0, type: 'normal', data: {} } as unknown as JobParameters;
  const at = (s: number) => new Date(T0 + s * 1000);

  it('a job never run is QUEUED with no times', () => {
    const v = jobView({ ...base, nextRunAt: at(0) });
    expect(v).toMatchObject({ id: 'j1', name: 'replay', status: 'QUEUED', progress: 0, startedAt: null, finishedAt: null, error: null });
  });

  it('a locked job started after its last finish is RUNNING, with Agenda progress 0..100 as 0..1', () => {
    const v = jobView({ ...base, nextRunAt: null, lockedAt: at(5), lastRunAt: at(5), progress: 42.5 });
    expect(v).toMatchObject({ status: 'RUNNING', progress: 0.425, startedAt: at(5), finishedAt: null });
  });

  it('a job whose worker died mid-run stays RUNNING (it is resumed, not done)', () => {
    expect(jobView({ ...base, nextRunAt: null, lastRunAt: at(5), lastFinishedAt: at(1) }).status).toBe('RUNNING');
  });

  it('a finished job is SUCCEEDED with progress 1 and its finish time', () => {
    const v = jobView({ ...base, nextRunAt: null, lastRunAt: at(5), lastFinishedAt: at(9), progress: 99 });
    expect(v).toMatchObject({ status: 'SUCCEEDED', progress: 1, finishedAt: at(9), error: null });
  });

  it('a failure with a retry ahead is QUEUED and shows the error; with none left it is FAILED and keeps it', () => {
    const failed = { ...base, lastRunAt: at(5), lastFinishedAt: at(6), failedAt: at(6), failCount: 1, failReason: 'boom' };
    expect(jobView({ ...failed, nextRunAt: at(10) })).toMatchObject({ status: 'QUEUED', error: 'boom' });
    expect(jobView({ ...failed, nextRunAt: null })).toMatchObject({ status: 'FAILED', error: 'boom', finishedAt: at(6) });
  });

  it('a success after an earlier failure is SUCCEEDED (the failure is older than the finish)', () => {
    const v = jobView({ ...base, nextRunAt: null, lastRunAt: at(8), lastFinishedAt: at(9), failedAt: at(6), failReason: 'boom' });
    expect(v).toMatchObject({ status: 'SUCCEEDED', error: null });
  });
});

/** A log made the way the writer makes it: entries, duplicates, late entries, then decisions. */
function makeLog(opts: { stock: number; users: number; closeAfter?: number; id?: string; offset0?: bigint }) {
  const id = opts.id ?? 'c1';
  let offset = opts.offset0 ?? 0n;
  const log: Logged[] = [];
  let state: CampaignState = initialState();
  const push = (event: CampaignEvent) => {
    const l: Logged = { event, partition: 0, offset: offset++ };
    log.push(l);
    const out = decide(state, l, new Date(T0), cryptoMinter, memoryCodes().sealer);
    state = evolve(state, l);
    for (const e of out) {
      const ol: Logged = { event: e, partition: 0, offset: offset++ };
      log.push(ol);
      state = evolve(state, ol);
    }
  };
  push({
    type: 'CampaignCreated',
    version: EVENT_VERSION,
    eventId: `created:${id}`,
    campaignId: id,
    occurredAt: iso(T0),
    title: 't',
    reward: 'r',
    stock: opts.stock,
    opensAt: iso(T0 + 1000),
    closesAt: iso(T0 + 3_600_000),
  });
  const enter = (userId: string, at: number) =>
    push({ type: 'EntrantRegistered', version: EVENT_VERSION, eventId: `e${offset}`, campaignId: id, occurredAt: iso(at), userId });
  enter('early', T0); // before opensAt: rejected
  for (let i = 0; i < opts.users; i++) {
    if (opts.closeAfter === i) {
      push({
        type: 'CampaignClosed',
        version: EVENT_VERSION,
        eventId: `closed:${id}`,
        campaignId: id,
        occurredAt: iso(T0 + 2000 + i),
        reason: 'admin',
      });
    }
    enter(`u${i}`, T0 + 2000 + i);
    if (i % 3 === 0) enter(`u${i}`, T0 + 2000 + i); // a duplicate click
  }
  return { log, state };
}

describe('reconcile: the log folded with the domain rules', () => {
  it('agrees with the pure domain replay: entrants, winners with positions, issued', () => {
    const { log } = makeLog({ stock: 7, users: 40 });
    const truth = replay(log);
    const folded = new Map<string, Folded>();
    // in fetched batches of uneven size, as the log reader hands them over
    for (let i = 0; i < log.length; i += 13) foldLog(folded, log.slice(i, i + 13));
    const f = folded.get('c1')!;
    expect(f.state.places).toEqual(truth.places);
    expect(countsOfFolded(f)).toMatchObject({ entrants: 40, winners: 7, issued: 7 });
    const winners = [...truth.places].filter(([, p]) => p.position <= 7).map(([u, p]) => [u, p.position] as const);
    expect(countsOfFolded(f).winnersDigest).toBe(digestWinners(winners));
  });

  it('follows a close in the log: later entries take no place', () => {
    const { log } = makeLog({ stock: 100, users: 20, closeAfter: 12 });
    const folded = new Map<string, Folded>();
    foldLog(folded, log);
    expect(countsOfFolded(folded.get('c1')!)).toMatchObject({ entrants: 12, winners: 12, issued: 12 });
    expect(folded.get('c1')!.state.places).toEqual(replay(log).places);
  });

  it('keeps only the campaigns asked for', () => {
    const a = makeLog({ stock: 2, users: 5, id: 'a' }).log;
    const b = makeLog({ stock: 2, users: 5, id: 'b', offset0: 1000n }).log;
    const folded = new Map<string, Folded>();
    foldLog(folded, [...a, ...b], new Set(['b']));
    expect([...folded.keys()]).toEqual(['b']);
  });

  it('names what differs, and nothing when the projection agrees', () => {
    const log = { entrants: 10, winners: 3, issued: 3, winnersDigest: 'x' };
    expect(differences(log, { ...log })).toEqual([]);
    expect(differences(log, null)).toEqual(['campaign missing']);
    expect(differences(log, { ...log, entrants: 9, issued: 2 })).toEqual(['entrants 9 (log 10)', 'issued 2 (log 3)']);
    expect(differences(log, { ...log, winnersDigest: 'y' })).toEqual(['winners differ (same count)']);
    expect(differences(log, { ...log, winnersDigest: null })).toEqual([]);
  });

  it('a winners digest does not depend on the order it was read in', () => {
    expect(
      digestWinners([
        ['a', 1],
        ['b', 2],
      ]),
    ).toBe(
      digestWinners([
        ['b', 2],
        ['a', 1],
      ]),
    );
    expect(
      digestWinners([
        ['a', 1],
        ['b', 2],
      ]),
    ).not.toBe(
      digestWinners([
        ['a', 2],
        ['b', 1],
      ]),
    );
  });
});

describe('replay: partitions and progress', () => {
  it('one campaign rewinds its own partition; every campaign rewinds them all', () => {
    expect(affectedPartitions('c-x', 6)).toEqual([partitionFor('c-x', 6)]);
    expect(affectedPartitions(null, 3)).toEqual([0, 1, 2]);
  });

  it('weighs partitions by their records, an empty one as one', () => {
    expect(
      weightedProgress([
        { weight: 900n, fraction: 1 },
        { weight: 100n, fraction: 0 },
      ]),
    ).toBeCloseTo(0.9);
    expect(
      weightedProgress([
        { weight: 0n, fraction: 0 },
        { weight: 0n, fraction: 1 },
      ]),
    ).toBeCloseTo(0.5);
    expect(weightedProgress([{ weight: 10n, fraction: 1.7 }])).toBe(1);
    expect(weightedProgress([])).toBe(1);
  });

  it('a reader one short of the end has read it (the tail is a transaction marker)', () => {
    expect(nearlyReached(9n, 10n)).toBe(true);
    expect(nearlyReached(8n, 10n)).toBe(false);
    expect(nearlyReached(0n, 0n)).toBe(true);
  });
});

describe('report: chunk sums', () => {
  it('adds counts and keeps the earliest first entry', () => {
    let c = { position: 0, entrants: 0, winners: 0, issued: 0, firstEntryAt: null as string | null, chunks: 0 };
    c = addChunk(c, { n: 1000, first: new Date(T0 + 5), winners: 300, issued: 299 }, 1000);
    c = addChunk(c, { n: 20, first: new Date(T0 + 1), winners: 0, issued: 0 }, 1020);
    c = addChunk(c, { n: 0, first: null, winners: 0, issued: 0 }, 1020);
    expect(c).toEqual({ position: 1020, entrants: 1020, winners: 300, issued: 299, firstEntryAt: iso(T0 + 1), chunks: 3 });
  });
});

describe('cleanup: when a campaign stopped taking entries', () => {
  it('is its close if closed early, else closesAt once past, else not yet', () => {
    expect(closedSince({ closesAt: T0 + 100, closedAt: T0 + 10 }, T0 + 50)).toBe(T0 + 10);
    expect(closedSince({ closesAt: T0 + 100, closedAt: null }, T0 + 150)).toBe(T0 + 100);
    expect(closedSince({ closesAt: T0 + 100, closedAt: null }, T0 + 50)).toBeNull();
  });
});
