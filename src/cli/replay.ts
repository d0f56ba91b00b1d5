import '../../batch/cliQuiet.js';
import { Command, Option } from 'commander';
import { JOB_OPTIONS, rewindFor } from '../../batch/index.js';
import { awaitWriters, cliServices, fmt, followJob, table } from '../../batch/cli.js';
import { Deadline, EXIT, failure, ProgressLine, seconds } from './progress.js';
import type { ReplayData, ReplayTarget } from '../../batch/replay.js';
import { queueReplay } from '../../batch/queue.js';
import { affectedPartitions, runReplay } from '../../batch/replay.js';
import type { Projection } from '../../batch/writers.js';
import { CAMPAIGN_ID } from '../api/guards.js';
import { loadConfigOrExit } from '../config.js';

const program = new Command()
  .name('replay')
  .description('rebuilds a projection (Redis, the Postgres tables, or both) from the log, for one campaign or all')
  .addOption(new Option('--target <target>', 'the projection to rebuild').choices(['redis', 'database', 'all']).makeOptionMandatory())
  .option('--campaign <id>', 'only this campaign (default: every campaign)')
  .option(
    '--writer-wait <seconds>',
    'fail when no writer (the single writer for redis, the projector for database) owns the partitions within this time',
    '10',
  )
  .option('--worker-wait <seconds>', 'run the job in this process when no worker picks it up within this time', '10')
  .option('--timeout <seconds>', 'stop waiting after this time: exit 124 with what it waited on (default: wait as long as the job does)')
  .addHelpText('after', '\nExit: 0 done, 1 failed (the reason on the last line), 124 --timeout ended a wait.')
  .parse();

const opts = program.opts<{
  target: 'redis' | 'database' | 'all';
  campaign?: string;
  writerWait: string;
  workerWait: string;
  timeout?: string;
}>();
if (opts.campaign !== undefined && !CAMPAIGN_ID.test(opts.campaign)) program.error('--campaign must match [a-z0-9-]{1,64}');
const workerWaitMs = seconds(program, '--worker-wait', opts.workerWait)! * 1000;
const writerWaitMs = seconds(program, '--writer-wait', opts.writerWait)! * 1000;
const deadline = new Deadline(seconds(program, '--timeout', opts.timeout));

const config = loadConfigOrExit();

const s = await cliServices(config);
const line = new ProgressLine(`replay ${opts.target}`);
let code: number;
try {
  const target = opts.target.toUpperCase() as ReplayTarget;
  const campaignId = opts.campaign ?? null;
  const projections: Projection[] = target === 'ALL' ? ['redis', 'database'] : [target === 'REDIS' ? 'redis' : 'database'];
  console.log(`replay ${target} of ${campaignId ?? 'every campaign'}`);
  line.start('checking for a writer');
  await awaitWriters(s, projections, affectedPartitions(campaignId, config.EVENT_PARTITIONS), {
    waitMs: writerWaitMs,
    deadline,
    line,
    then: 'then run this replay again (nothing was queued, deleted or rewound)',
  });
  const job = await queueReplay(s.handle, target, campaignId);
  const id = String(job.attrs._id);
  line.update(0, `job ${id} queued`);
  const deps = { config, kafka: s.kafka, ordering: s.ordering, prisma: s.prisma, rewind: rewindFor(config) };
  const { view, data } = await followJob<ReplayData>(s, id, {
    line,
    workerWaitMs,
    deadline,
    inProcess: { name: 'replay', body: (ctx) => runReplay(ctx, deps), options: JOB_OPTIONS.replay },
  });
  const rows: [string, string][] = [
    ['job', id],
    ['status', view.status],
    ['target', target],
    ['campaign', campaignId ?? 'all'],
  ];
  for (const [name, r] of [
    ['redis', data.result?.redis],
    ['database', data.result?.database],
  ] as const) {
    if (!r) continue;
    rows.push([`${name}: partitions`, r.partitions.join(', ')]);
    if ('campaigns' in r) rows.push([`${name}: campaigns deleted`, fmt.int(r.campaigns)]);
    rows.push([`${name}: events replayed`, fmt.int(r.events)], [`${name}: time`, fmt.ms(r.seconds * 1000)]);
    rows.push([`${name}: events/s`, r.seconds > 0 ? fmt.int(Math.round(r.events / r.seconds)) : '-']);
  }
  line.stop();
  console.log(table(rows));
  if (view.error) console.error(`replay failed: ${view.error}`);
  code = view.status === 'SUCCEEDED' ? EXIT.ok : EXIT.failed;
} catch (err) {
  line.stop();
  code = failure('replay', err);
} finally {
  await s.close();
}
process.exit(code);
