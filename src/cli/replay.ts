import '../../batch/cliQuiet.js';
import { Command, Option } from 'commander';
import { JOB_OPTIONS, rewindFor } from '../../batch/index.js';
import { cliServices, fmt, followJob, table } from '../../batch/cli.js';
import type { ReplayData, ReplayTarget } from '../../batch/agenda.js';
import { queueReplay } from '../../batch/queue.js';
import { runReplay } from '../../batch/replay.js';
import { CAMPAIGN_ID } from '../api/resolvers.js';
import { loadConfigOrExit } from '../config.js';

const program = new Command()
  .name('replay')
  .description('rebuilds a projection (Redis, the Postgres tables, or both) from the log, for one campaign or all')
  .addOption(new Option('--target <target>', 'the projection to rebuild').choices(['redis', 'database', 'all']).makeOptionMandatory())
  .option('--campaign <id>', 'only this campaign (default: every campaign)')
  .option('--worker-wait <seconds>', 'run the job in this process when no worker picks it up within this time', '10')
  .parse();

const opts = program.opts<{ target: 'redis' | 'database' | 'all'; campaign?: string; workerWait: string }>();
if (opts.campaign !== undefined && !CAMPAIGN_ID.test(opts.campaign)) program.error('--campaign must match [a-z0-9-]{1,64}');
const workerWaitMs = Number(opts.workerWait) * 1000;
if (!Number.isFinite(workerWaitMs) || workerWaitMs < 0) program.error('--worker-wait must be a number of seconds');

const config = loadConfigOrExit();

const s = await cliServices(config);
let code = 1;
try {
  const target = opts.target.toUpperCase() as ReplayTarget;
  const job = await queueReplay(s.handle, target, opts.campaign ?? null);
  const id = String(job.attrs._id);
  console.log(`replay ${target} of ${opts.campaign ?? 'every campaign'}: job ${id}`);
  const deps = { config, kafka: s.kafka, ordering: s.ordering, prisma: s.prisma, rewind: rewindFor(config) };
  const { view, data } = await followJob<ReplayData>(s, id, {
    label: `replay ${target.toLowerCase()}`,
    workerWaitMs,
    inProcess: { name: 'replay', body: (ctx) => runReplay(ctx, deps), options: JOB_OPTIONS.replay },
  });
  const rows: [string, string][] = [
    ['job', id],
    ['status', view.status],
    ['target', target],
    ['campaign', opts.campaign ?? 'all'],
  ];
  for (const [name, r] of [['redis', data.result?.redis], ['database', data.result?.database]] as const) {
    if (!r) continue;
    rows.push([`${name}: partitions`, r.partitions.join(', ')]);
    if ('campaigns' in r) rows.push([`${name}: campaigns deleted`, fmt.int(r.campaigns)]);
    rows.push([`${name}: events replayed`, fmt.int(r.events)], [`${name}: time`, fmt.ms(r.seconds * 1000)]);
    rows.push([`${name}: events/s`, r.seconds > 0 ? fmt.int(Math.round(r.events / r.seconds)) : '-']);
  }
  if (view.error) rows.push(['error', view.error]);
  console.log(table(rows));
  code = view.status === 'SUCCEEDED' ? 0 : 1;
} catch (err) {
  console.error(`replay failed: ${(err as Error).message}`);
} finally {
  await s.close();
}
process.exit(code);
