import '../../batch/cliQuiet.js';
import { writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { JOB_OPTIONS } from '../../batch/index.js';
import { cliServices, fmt, followJob, table } from '../../batch/cli.js';
import { Deadline, EXIT, failure, ProgressLine, seconds } from './progress.js';
import type { ReportData } from '../../batch/report.js';
import { queueReport } from '../../batch/queue.js';
import { runReport, type ReportResult } from '../../batch/report.js';
import { CAMPAIGN_ID } from '../api/guards.js';
import { loadConfigOrExit } from '../config.js';

const program = new Command()
  .name('report')
  .description("counts a campaign's report in chunks into campaign_reports and prints it")
  .requiredOption('--campaign <id>', 'the campaign')
  .option('--csv <file>', 'also write the report to this CSV file')
  .option('--worker-wait <seconds>', 'run the job in this process when no worker picks it up within this time', '10')
  .option('--timeout <seconds>', 'stop waiting after this time: exit 124 with what it waited on (default: wait as long as the job does)')
  .addHelpText('after', '\nExit: 0 done, 1 failed (the reason on the last line), 124 --timeout ended a wait.')
  .parse();

const opts = program.opts<{ campaign: string; csv?: string; workerWait: string; timeout?: string }>();
if (!CAMPAIGN_ID.test(opts.campaign)) program.error('--campaign must match [a-z0-9-]{1,64}');
const workerWaitMs = seconds(program, '--worker-wait', opts.workerWait)! * 1000;
const deadline = new Deadline(seconds(program, '--timeout', opts.timeout));

const config = loadConfigOrExit();

const CSV_COLUMNS: (keyof ReportResult)[] = [
  'campaignId',
  'entrants',
  'requests',
  'winners',
  'issued',
  'firstEntryAt',
  'openedAt',
  'soldOutAt',
  'sellOutMs',
  'generatedAt',
];
const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

const s = await cliServices(config);
const line = new ProgressLine('report');
let code: number;
try {
  const known =
    (await s.ordering.meta(opts.campaign)) ?? (await s.prisma.campaign.findUnique({ where: { id: opts.campaign }, select: { id: true } }));
  if (!known) throw new Error(`campaign ${opts.campaign} not found`);
  const job = await queueReport(s.handle, opts.campaign);
  const id = String(job.attrs._id);
  console.log(`report of ${opts.campaign}: job ${id}`);
  line.start('QUEUED');
  const deps = { config, kafka: s.kafka, ordering: s.ordering, prisma: s.prisma };
  const { view, data } = await followJob<ReportData>(s, id, {
    line,
    workerWaitMs,
    deadline,
    inProcess: { name: 'report', body: (ctx) => runReport(ctx, deps), options: JOB_OPTIONS.report },
  });
  const r = data.result;
  const rows: [string, string][] = [
    ['job', id],
    ['status', view.status],
  ];
  if (r) {
    rows.push(
      ['campaign', r.campaignId],
      ['entrants', fmt.int(r.entrants)],
      ['requests', fmt.int(r.requests)],
      ['winners', fmt.int(r.winners)],
      ['gifticons issued', fmt.int(r.issued)],
      ['first entry', fmt.date(r.firstEntryAt)],
      ['opened', fmt.date(r.openedAt)],
      ['sold out', fmt.date(r.soldOutAt)],
      ['opening to sold out', fmt.ms(r.sellOutMs)],
      ['counted in', `${fmt.int(r.chunks)} chunks, ${fmt.ms(r.seconds * 1000)}`],
    );
  }
  line.stop();
  console.log(table(rows));
  if (r && opts.csv) {
    await writeFile(opts.csv, `${CSV_COLUMNS.join(',')}\n${CSV_COLUMNS.map((c) => csvCell(r[c])).join(',')}\n`);
    console.log(`written to ${opts.csv}`);
  }
  if (view.error) console.error(`report failed: ${view.error}`);
  code = view.status === 'SUCCEEDED' ? EXIT.ok : EXIT.failed;
} catch (err) {
  line.stop();
  code = failure('report', err);
} finally {
  await s.close();
}
process.exit(code);
