import { describe, expect, it } from 'vitest';
import { auditCampaign } from '../../src/domain/audit.js';
import type { memoryCodes } from '../support/codes.js';
import { created, entrant, rig, type Rig } from '../support/writerPorts.js';

/** The single writer and the campaigns' data keys, over in-memory ports: campaign `c` has 3 units; u0..u4 enter. */
function given(r: Rig, users = 5) {
  r.log.append(0, created('c', 3));
  for (let i = 0; i < users; i++) r.log.append(0, entrant('c', `u${i}`));
}

const kinds = (r: Rig) => r.log.events(0).map((e) => e.type);
const gifticons = (r: Rig) =>
  r.log
    .events(0)
    .filter((e) => e.type === 'GifticonIssued')
    .map((e) => (e as { userId: string }).userId);

describe('a partition writer sealing codes', () => {
  it('a campaign whose data key cannot be had: the batch fails with why, nothing is told or issued; once it can, the same winners get sealed codes', async () => {
    const r = rig();
    given(r);
    const codes = r.shared.codes as ReturnType<typeof memoryCodes>;
    codes.fail.add('c');
    const w = await r.writer();
    const ctl = r.control();
    await expect(w.onBatch(r.log.batch(0, 0n), ctl)).rejects.toThrow(/data key of campaign c cannot be had/);
    expect(kinds(r).filter((k) => k === 'GifticonIssued' || k === 'WinnerSelected')).toEqual([]);
    expect(r.replies.told).toEqual([]);
    expect(ctl.resolved).toEqual([]);
    // the consumer retries the batch: with the key back, it decides as it would have
    codes.fail.delete('c');
    await w.onBatch(r.log.batch(0, 0n), r.control());
    expect(await w.whenCommitted()).toBe(true);
    expect(gifticons(r)).toEqual(['u0', 'u1', 'u2']);
    const issued = r.log.events(0).filter((e) => e.type === 'GifticonIssued');
    for (const e of issued) expect(e).toMatchObject({ version: 2, sealedCode: expect.stringMatching(/^fcs1\./) });
    expect(auditCampaign(r.log.records.get(0)!, codes.open).problems).toEqual([]);
  });
});
