import '../../batch/cliQuiet.js';
import { Command } from 'commander';
import { JOB_OPTIONS } from '../../batch/index.js';
import { cliServices, fmt, followJob, table } from '../../batch/cli.js';
import { EventAppender } from '../infra/kafka/appender.js';
import { Deadline, EXIT, failure, ProgressLine, seconds } from './progress.js';
import { queueIssue } from '../../batch/queue.js';
import { runIssue, type IssueData } from '../../batch/issue.js';
import { CAMPAIGN_ID } from '../api/guards.js';
import { loadConfigOrExit } from '../config.js';

const program = new Command()
  .name('issue')
  .description("drives a PROVIDER campaign's issuance again: winners with no gifticon and no parked issuance, through the issuer")
  .requiredOption('--campaign <id>', 'the campaign')
  .option('--worker-wait <seconds>', 'run the job in this process when no worker picks it up within this time', '10')
  .option('--timeout <seconds>', 'stop waiting after this time: exit 124 with what it waited on (default: wait as long as the job does)')
  .addHelpText('after', '\nExit: 0 done, 1 failed (the reason on the last line), 124 --timeout ended a wait.')
  .parse();

const opts = program.opts<{ campaign: string; workerWait: string; timeout?: string }>();
if (!CAMPAIGN_ID.test(opts.campaign)) program.error('--campaign must match [a-z0-9-]{1,64}');
const workerWaitMs = seconds(program, '--worker-wait', opts.workerWait)! * 1000;
const deadline = new Deadline(seconds(program, '--timeout', opts.timeout));

const config = loadConfigOrExit();
const s = await cliServices(config);
const line = new ProgressLine('issue');
// made when the job runs in this process: a worker elsewhere needs none here
const held: { appender: EventAppender | null } = { appender: null };
let code: number;
try {
  const meta = await s.ordering.meta(opts.campaign);
  if (!meta && !(await s.prisma.campaign.findUnique({ where: { id: opts.campaign }, select: { id: true } })))
    throw new Error(`campaign ${opts.campaign} not found`);
  if (meta && (meta.terms.issuance ?? 'MINTED') !== 'PROVIDER') throw new Error(`campaign ${opts.campaign} is not a PROVIDER campaign`);
  const job = await queueIssue(s.handle, opts.campaign);
  const id = String(job.attrs._id);
  console.log(`issue of ${opts.campaign}: job ${id}`);
  line.start('QUEUED');
  const { view, data } = await followJob<IssueData>(s, id, {
    line,
    workerWaitMs,
    deadline,
    inProcess: {
      name: 'issue',
      body: async (ctx) => runIssue(ctx, { prisma: s.prisma, appender: (held.appender ??= await EventAppender.connect(s.kafka, config)) }),
      options: JOB_OPTIONS.issue,
    },
  });
  line.stop();
  console.log(
    table([
      ['job', id],
      ['status', view.status],
      ['campaign', opts.campaign],
      ['winners walked', fmt.int(data.after ?? 0)],
      ['asked again', fmt.int(data.requested ?? 0)],
    ]),
  );
  if (view.error) console.error(`issue failed: ${view.error}`);
  code = view.status === 'SUCCEEDED' ? EXIT.ok : EXIT.failed;
} catch (err) {
  line.stop();
  code = failure('issue', err);
} finally {
  await held.appender?.close().catch(() => undefined);
  await s.close();
}
process.exit(code);
