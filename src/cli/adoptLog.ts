import { Command } from 'commander';
import { createRedis, RedisOrdering, wipeProjection } from '../../projections/redis-ordering/index.js';
import { resetReadModel } from '../../projections/prisma-tables/adopt.js';
import { fmt, table } from '../../batch/cli.js';
import { loadConfigOrExit } from '../config.js';
import { createKafka } from '../infra/kafka/client.js';
import { readLogIdentity } from '../infra/kafka/genesis.js';
import { describeIdentity, identityKey } from '../infra/kafka/logIdentity.js';
import { ensureTopics } from '../infra/kafka/topics.js';
import { createPrisma } from '../infra/prisma/client.js';
import { migrate } from '../infra/prisma/migrate.js';
import { checkLog } from '../logCheck.js';
import { EXIT, failure } from './progress.js';

const program = new Command()
  .name('adopt-log')
  .description(
    'makes the stores follow the log KAFKA_BROKERS and TOPIC_PREFIX name: empties the Postgres read model and the Redis projection ' +
      '(REDIS_PREFIX), which the running firstcome processes then rebuild from that log',
  )
  .option('--keep-old', 'first copy every read-model table to old_<time>_<table>, so what the old log alone knew stays readable')
  .option('--force', 'rebuild even when every store already follows this log')
  .addHelpText('after', '\nExit: 0 done (or nothing to do), 1 failed (the reason on the last line).')
  .parse();
const opts = program.opts<{ keepOld?: boolean; force?: boolean }>();

const config = loadConfigOrExit();
const kafka = createKafka(config, 'firstcome-adopt-log');
const admin = kafka.admin();
const prisma = createPrisma(config.DATABASE_URL, { poolSize: 2 });
const redis = createRedis(config);
let code: number = EXIT.ok;
try {
  await admin.connect();
  await migrate(config.DATABASE_URL);
  // the log may be new: created here, with its genesis, as a starting firstcome would
  await ensureTopics(admin, config, kafka);
  const current = await readLogIdentity(kafka, admin, config.topics.events);
  const ordering = new RedisOrdering(redis, config.REDIS_PREFIX, identityKey(current));
  // the same check a starting process makes (with no fault, it adopts stores from before identities, as a start would)
  const fault = await checkLog({ admin, prisma, ordering, topic: config.topics.events }, current);
  const recorded = fault?.recorded ?? null;
  console.log(`the log: ${describeIdentity(current)}`);
  console.log(`the stores: ${fault ? fault.reason.replace(/^run `[^`]*`: /, '') : 'follow it, or have recorded no log yet'}`);
  if (!fault && !opts.force) {
    console.log('nothing to adopt: every store follows this log, or has recorded none yet (--force rebuilds anyway)');
  } else {
    const archivePrefix = `old_${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`;
    const reset = await resetReadModel(prisma, config.topics.events, { keepOld: opts.keepOld === true, archivePrefix });
    const keys = await wipeProjection(ordering);
    const rows: [string, string][] = [
      ['adopted', describeIdentity(current)],
      ['replaced', recorded ? describeIdentity(recorded) : '-'],
      ...[...reset.removed].map(([t, n]): [string, string] => [`postgres ${t}: rows removed`, fmt.int(n)]),
      [`redis ${config.REDIS_PREFIX}: keys removed`, fmt.int(keys)],
      ['archived to', reset.archived.length > 0 ? `${archivePrefix}_* (${reset.archived.length} tables)` : 'nothing (no --keep-old)'],
    ];
    console.log(table(rows));
    console.log(
      'firstcome processes waiting on this start within 2 s and rebuild both projections from the log; /readyz answers 200 once they run',
    );
  }
} catch (err) {
  code = failure('adopt-log', err);
} finally {
  await admin.disconnect().catch(() => undefined);
  await prisma.$disconnect().catch(() => undefined);
  redis.disconnect();
}
process.exit(code);
