import { describe, expect, it } from 'vitest';
import { ConsumerHost } from '../../src/read-side/consumerHost.js';
import { campaign, consumerHostRig, key, Recorder, sorted } from '../support/consumerHostRig.js';
import { waitUntil } from '../support/wait.js';

/**
 * The consumer host against the real broker: one fetch feeds every processor, a failing processor
 * neither holds the others up nor loses an event, and a checkpoint moved back is re-delivered to
 * its processor alone. The processors here keep their checkpoints in memory, so what each one was
 * given can be compared with the log exactly.
 */
const rig = consumerHostRig('consumer_host_int');
const { append, theLog, started } = rig;

describe('the consumer host', () => {
  it('feeds every processor from one consumer group, each the events it can handle, once and in log order', async () => {
    await append([...campaign('one-a', 30), ...campaign('one-b', 30)]);
    const log = await theLog();
    const all = new Recorder('all');
    const created = new Recorder('created', (e) => e.type === 'CampaignCreated');
    const h = await started(all, created);

    await waitUntil(
      async () => all.got.length,
      (n) => n >= log.length,
      { what: 'every event handled' },
    );
    await waitUntil(
      async () => created.got.length,
      (n) => n >= 2,
      { what: 'both campaigns created' },
    );
    expect(sorted(all.got)).toEqual(log);
    expect(new Set(all.got.map(key)).size).toBe(all.got.length);
    expect(sorted(created.got)).toEqual(log.filter((l) => l.event.type === 'CampaignCreated'));

    const admin = rig.kafka.admin();
    await admin.connect();
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.startsWith(rig.iso.config.TOPIC_PREFIX) && !g.includes('.reader.'));
    await admin.disconnect();
    expect(groups).toEqual([h.groupId]);
    expect(h.groupId).toBe(`${rig.iso.config.TOPIC_PREFIX}.read-side.all+created`);
  });

  it("a checkpoint beyond its partition's end (the log was replaced) stops the partition out loud, skipping nothing, until adopted", async () => {
    const before = await theLog();
    const ahead = new Recorder('ahead');
    for (const p of [0, 1]) ahead.stored.set(p, 1_000_000n);
    await started(ahead);
    await waitUntil(
      async () => ahead.failures.filter((f) => f.startsWith('log:')),
      (fs) => fs.length >= 2,
      { what: 'both partitions reported' },
    );
    expect(ahead.failures.find((f) => f.startsWith('log:0'))).toMatch(
      /^log:0: run `npm run adopt-log`: the ahead checkpoint of partition 0 is at offset 1000000, beyond the log's end \(\d+\)/,
    );
    // records appended meanwhile are neither handled nor skipped
    await append(campaign('beyond', 5));
    const log = await theLog();
    expect(log.length).toBeGreaterThan(before.length);
    expect(ahead.got).toEqual([]);
    // adopt-log empties the checkpoints: the next check reads the partitions from their start
    ahead.stored.clear();
    await waitUntil(
      async () => ahead.got.length,
      (n) => n >= log.length,
      { what: 'the whole log handled once adopted' },
    );
    expect(sorted(ahead.got)).toEqual(log);
    expect(ahead.recovered).toEqual(expect.arrayContaining(['log:0', 'log:1']));
  });

  it('a failing processor is reported and tried again after a backoff while the others go on, and then misses nothing', async () => {
    const log = await theLog();
    const healthy = new Recorder('healthy');
    const failing = new Recorder('failing');
    // both start where the previous test ended, so only the new events flow
    for (const p of new Set(log.map((l) => l.partition))) {
      const end = log.filter((l) => l.partition === p).at(-1)!.offset + 1n;
      healthy.stored.set(p, end);
      failing.stored.set(p, end);
    }
    failing.failNext = Number.POSITIVE_INFINITY;
    await started(healthy, failing);
    await append(campaign('two', 40));
    const fresh = (await theLog()).filter((l) => l.event.campaignId === 'two');

    await waitUntil(
      async () => healthy.got.length,
      (n) => n >= fresh.length,
      { what: 'the healthy processor handles every new event' },
    );
    // the healthy one finished while the other still fails
    expect(failing.got).toEqual([]);
    expect(failing.failures[0]).toMatch(/store away/);
    failing.failNext = 0;
    await waitUntil(
      async () => failing.got.length,
      (n) => n >= fresh.length,
      { what: 'the failing processor catches up', timeoutMs: 30_000 },
    );
    expect(sorted(failing.got)).toEqual(fresh);
    expect(sorted(healthy.got)).toEqual(fresh);
    // it is ok again on the partition it failed on
    const part = failing.failures[0]!.split(':')[0]!;
    expect(failing.recovered).toContain(part);
  });

  it('a checkpoint moved back (a replay) is noticed on an idle partition and re-delivered to its processor alone', async () => {
    const log = await theLog();
    const rewound = new Recorder('rewound', () => true, true);
    const other = new Recorder('other');
    await started(rewound, other);
    await waitUntil(
      async () => Math.min(rewound.got.length, other.got.length),
      (n) => n >= log.length,
      { what: 'both caught up' },
    );

    const p = log.find((l) => l.event.campaignId === 'two')!.partition;
    rewound.got.length = 0;
    rewound.stored.set(p, 0n);
    const again = log.filter((l) => l.partition === p);
    await waitUntil(
      async () => rewound.got.length,
      (n) => n >= again.length,
      { what: 'the rewound partition re-delivered' },
    );
    expect(sorted(rewound.got)).toEqual(again);
    // the other processor was given nothing twice
    expect(sorted(other.got)).toEqual(log);
  });

  it('a rewind its processor hears of is acted on at once, not at the next check', async () => {
    const log = await theLog();
    let heard: (() => void) | null = null;
    const rewound = Object.assign(new Recorder('heard', () => true, true), {
      watchRewinds: async (h: () => void) => {
        heard = h;
        return async () => void (heard = null);
      },
    });
    // the checks alone would notice the rewind a minute later
    const host = (rig.host = new ConsumerHost(rig.kafka, rig.iso.config, rig.parking, { maxWaitTimeInMs: 100, checkEveryMs: 60_000 }));
    host.add(rewound);
    await host.start();
    await waitUntil(
      async () => rewound.got.length,
      (n) => n >= log.length,
      { what: 'caught up' },
    );
    expect(heard).not.toBeNull();

    const p = log.find((l) => l.event.campaignId === 'two')!.partition;
    rewound.got.length = 0;
    rewound.stored.set(p, 0n);
    heard!();
    const again = log.filter((l) => l.partition === p);
    await waitUntil(
      async () => rewound.got.length,
      (n) => n >= again.length,
      { what: 'the rewound partition re-delivered', timeoutMs: 10_000 },
    );
    expect(sorted(rewound.got)).toEqual(again);
    await host.stop();
    rig.host = null;
    expect(heard).toBeNull();
  });
});
