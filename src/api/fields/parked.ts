import type { ApiPluginFactory } from '../../plugin.js';
import { badInput, notFound } from '../errors.js';
import { requireAdmin, type Signed } from '../guards.js';
import { EventAppender } from '../../infra/kafka/appender.js';
import type { ParkedRecord as Row } from '../../infra/prisma/client.js';
import { connectionOf, decodeCursor, pageSize } from './connections.js';
import { retryParked, type RetryDeps } from '../../../projections/parked/retry.js';

/** Admin: the parked records, newest first, and retrying them (one, or every one still parked). */

const STATUSES = new Set(['PARKED', 'RETRIED']);
const ID = /^[A-Za-z0-9._:-]{1,200}$/;

function node(r: Row) {
  return {
    id: r.id,
    consumer: r.consumer,
    reason: r.reason.toUpperCase(),
    error: r.error,
    topic: r.topic,
    partition: r.partition,
    offset: r.logOffset.toString(),
    key: r.key,
    raw: r.raw,
    parkedAt: r.parkedAt,
    status: r.status,
    attempts: r.attempts,
    retriedAt: r.retriedAt,
    retriedAs: r.retriedAs,
  };
}

export const parkedPlugin: ApiPluginFactory = async (shared) => {
  const { prisma, kafka, config } = shared;
  // retries are rare: the producer is made on the first one
  let appender: Promise<EventAppender> | null = null;
  const deps: RetryDeps = {
    prisma,
    partitions: config.EVENT_PARTITIONS,
    append: async (event) => {
      appender ??= EventAppender.connect(kafka, config);
      appender.catch(() => (appender = null));
      return (await appender).append(event);
    },
  };
  return {
    resolvers: {
      Query: {
        parked: async (_: unknown, args: { first?: unknown; after?: unknown; status?: unknown }, ctx: Signed) => {
          requireAdmin(ctx);
          const first = pageSize(args.first, 50);
          const after = decodeCursor('parked', args.after);
          if (args.status !== undefined && args.status !== null && !STATUSES.has(String(args.status)))
            throw badInput('status', 'must be PARKED or RETRIED');
          const status = args.status ? { status: String(args.status) } : {};
          const where = after
            ? {
                ...status,
                OR: [{ parkedAt: { lt: new Date(after.parkedAt) } }, { parkedAt: new Date(after.parkedAt), id: { lt: after.id } }],
              }
            : status;
          const [rows, totalCount] = await Promise.all([
            prisma.parkedRecord.findMany({ where, orderBy: [{ parkedAt: 'desc' }, { id: 'desc' }], take: first + 1 }),
            prisma.parkedRecord.count({ where: status }),
          ]);
          return connectionOf(rows, first, totalCount, (r) => ({ list: 'parked', parkedAt: r.parkedAt.getTime(), id: r.id }), node);
        },
      },
      Mutation: {
        retryParked: async (_: unknown, args: { id: unknown }, ctx: Signed) => {
          requireAdmin(ctx);
          if (typeof args.id !== 'string' || !ID.test(args.id)) throw badInput('id', 'is not a parked record id');
          const r = await retryParked(deps, args.id);
          if (r.kind === 'not-found') throw notFound(`parked record ${args.id}`);
          return node(r.row);
        },
        retryAllParked: async (_: unknown, _args: unknown, ctx: Signed) => {
          requireAdmin(ctx);
          const summary = { retried: 0, stillParked: 0 };
          // oldest first: records appended again keep their relative order
          const ids = await prisma.parkedRecord.findMany({
            where: { status: 'PARKED' },
            orderBy: [{ parkedAt: 'asc' }, { id: 'asc' }],
            select: { id: true },
          });
          for (const { id } of ids) {
            const r = await retryParked(deps, id);
            if (r.kind === 'retried') summary.retried++;
            else if (r.kind === 'still-parked') summary.stillParked++;
          }
          return summary;
        },
      },
    },
    stop: async () => {
      await (await appender?.catch(() => null))?.close();
    },
  };
};
