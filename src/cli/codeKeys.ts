import { Command } from 'commander';
import { fmt, table } from '../../batch/cli.js';
import { loadConfigOrExit } from '../config.js';
import { rotateDataKeys, shredDataKey } from '../infra/codeKeys/keyAdmin.js';
import { createPrisma } from '../infra/prisma/client.js';
import { migrate } from '../infra/prisma/migrate.js';
import { EXIT, failure } from './progress.js';

/**
 * `npm run codes:rotate`: re-wraps every campaign's data key under the first key of CODE_KEYS.
 * `npm run codes:shred -- --campaign ID`: deletes a closed campaign's data key, erasing its codes
 * everywhere (the log included); the rest of the campaign reads as before.
 */
const program = new Command().name('codes').description("gifticon codes' data keys (CODE_KEYS, the code_data_keys table)");
program
  .command('rotate')
  .description('re-wraps every data key under the first key of CODE_KEYS (no sealed code changes); then older keys may leave the ring')
  .action(() => run('codes:rotate', rotate));
program
  .command('shred')
  .description("deletes a campaign's data key: its codes can never be read again, in the log, Postgres, Redis or the archive")
  .requiredOption('--campaign <id>', 'the campaign whose codes are erased')
  .option('--force', 'shred a campaign that is not closed yet (its next winners wait for codes that never come)')
  .action((o: { campaign: string; force?: boolean }) => run('codes:shred', (p) => shred(p, o.campaign, o.force === true)));

const config = loadConfigOrExit();

async function run(name: string, body: (prisma: ReturnType<typeof createPrisma>) => Promise<void>): Promise<void> {
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 2 });
  let code: number = EXIT.ok;
  try {
    await migrate(config.DATABASE_URL);
    await body(prisma);
  } catch (err) {
    code = failure(name, err);
  } finally {
    await prisma.$disconnect().catch(() => undefined);
  }
  process.exit(code);
}

async function rotate(prisma: ReturnType<typeof createPrisma>): Promise<void> {
  const r = await rotateDataKeys(prisma, config.CODE_KEYS, (done, total) => {
    if (process.stderr.isTTY) process.stderr.write(`\rre-wrapping data keys: ${done}/${total}`);
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  console.log(
    table([
      ['wrapping key', config.CODE_KEYS.current.id],
      ['data keys', fmt.int(r.total)],
      ['re-wrapped now', fmt.int(r.rewrapped)],
      ['already under it', fmt.int(r.current)],
      ['shredded', fmt.int(r.shredded)],
      ['not readable with CODE_KEYS', fmt.int(r.unreadable.length)],
    ]),
  );
  for (const u of r.unreadable) console.log(`  ${u.campaignId}: ${u.why}`);
  if (r.unreadable.length > 0)
    throw new Error(`${r.unreadable.length} data keys could not be re-wrapped: add their keys to CODE_KEYS and run it again`);
}

async function shred(prisma: ReturnType<typeof createPrisma>, campaignId: string, force: boolean): Promise<void> {
  const c = await prisma.campaign.findUnique({ where: { id: campaignId }, select: { closesAt: true, closedAt: true } });
  const closed = c !== null && (c.closedAt !== null || c.closesAt.getTime() <= Date.now());
  if (!closed && !force)
    throw new Error(`campaign ${campaignId} is ${c ? 'not closed yet' : 'not in the read model'}: close it first, or --force`);
  const had = await shredDataKey(prisma, campaignId);
  console.log(
    had
      ? `campaign ${campaignId}: its data key is deleted; its codes can no longer be read anywhere (readers show code: null)`
      : `campaign ${campaignId} had no data key: none will be made, so it holds no readable code`,
  );
}

await program.parseAsync();
