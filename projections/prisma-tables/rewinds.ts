import pg from 'pg';
import { pgConfig } from '../../src/infra/prisma/database.js';
import { logger } from '../../src/logger.js';
import { backoffMs } from '../../src/retrying.js';

const log = logger.child({ component: 'rewind-listener' });

/**
 * Postgres NOTIFY channel of rewinds of the Prisma projection; the payload is the topic rewound.
 * `rewindPrismaProjection` notifies in its transaction: the notice goes out when the rewind
 * commits, never before.
 */
export const REWIND_CHANNEL = 'firstcome_projection_rewind';

/**
 * Calls `heard` whenever a rewind of `topic` commits in the database (a replay(DATABASE) job, in
 * whatever process it runs): the consumer host then reads the checkpoints at once, instead of at
 * its next look (4 a second), which was up to a quarter second at the start of every replay.
 *
 * One LISTEN connection, opened again with a backoff when it cannot be had or is lost (Postgres
 * away at start, or restarted): the host's own look goes on meanwhile, so a rewind is never missed,
 * only noticed later. Resolves once listening, or once the first attempt failed and the next is
 * scheduled. The returned function stops it.
 */
export async function listenForRewinds(databaseUrl: string, topic: string, heard: () => void): Promise<() => Promise<void>> {
  let stopped = false;
  let client: pg.Client | null = null;
  let failures = 0;
  let retry: NodeJS.Timeout | null = null;
  const retryLater = () => {
    retry = setTimeout(() => void reconnect(), backoffMs(++failures));
  };

  const connect = async (): Promise<void> => {
    const c = new pg.Client(pgConfig(databaseUrl));
    c.on('notification', (n) => {
      if (n.channel === REWIND_CHANNEL && n.payload === topic) heard();
    });
    // a lost connection: 'error' then 'end', or 'end' alone
    c.on('error', (err) =>
      log.warn({ err }, 'rewind listener lost its connection: replays are noticed by the checkpoint check until it is back'),
    );
    c.once('end', () => {
      if (stopped || client !== c) return;
      client = null;
      retryLater();
    });
    await c.connect();
    try {
      await c.query(`LISTEN ${REWIND_CHANNEL}`);
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
    client = c;
    failures = 0;
  };

  const reconnect = async (): Promise<void> => {
    retry = null;
    if (stopped) return;
    try {
      await connect();
      // a rewind may have committed while the connection was away
      heard();
    } catch {
      if (!stopped) retryLater();
    }
  };

  try {
    await connect();
  } catch (err) {
    log.warn({ err }, 'rewind listener could not connect: replays are noticed by the checkpoint check until it does');
    retryLater();
  }
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    const c = client;
    client = null;
    await c?.end().catch(() => undefined);
  };
}
