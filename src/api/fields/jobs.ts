import type { ApiPluginFactory } from '../../plugin.js';
import { identityKey } from '../../infra/kafka/logIdentity.js';
import { badInput, notFound } from '../errors.js';
import { campaignId, requireAdmin, type Signed } from '../guards.js';
import { logger } from '../../logger.js';
import { openAgenda, watchOrphans } from '../../../batch/agenda.js';
import type { ReplayTarget } from '../../../batch/replay.js';
import { jobView } from '../../../batch/jobView.js';
import { queueIssue, queueReplay, queueReport } from '../../../batch/queue.js';

const TARGETS: ReadonlySet<string> = new Set<ReplayTarget>(['REDIS', 'DATABASE', 'ALL']);

/**
 * `requestReport`, `report`, `replay` and `job` (admins only; the caller is checked before any
 * argument). Jobs are queued here and run by a worker role, in this process or another.
 */
export const jobsPlugin: ApiPluginFactory = async (shared) => {
  const { prisma, ordering, instance, config } = shared;
  const handle = await openAgenda(config.DATABASE_URL, {
    name: `api-${instance}`,
    poolSize: 2,
    notify: true,
    logTag: identityKey(shared.logIdentity),
  });
  const orphans = watchOrphans(handle, logger.child({ role: 'api', component: 'jobs' }));

  return {
    resolvers: {
      Query: {
        report: async (_: unknown, args: { campaignId: unknown }, ctx: Signed) => {
          requireAdmin(ctx);
          const id = campaignId(args.campaignId);
          const r = await prisma.campaignReport.findFirst({
            where: { campaignId: id },
            orderBy: [{ generatedAt: 'desc' }, { id: 'desc' }],
          });
          return (
            r && {
              campaignId: r.campaignId,
              entrants: r.entrants,
              requests: r.requests,
              winners: r.winners,
              issued: r.issued,
              firstEntryAt: r.firstEntryAt,
              soldOutAt: r.soldOutAt,
              generatedAt: r.generatedAt,
            }
          );
        },
        job: async (_: unknown, args: { id: unknown }, ctx: Signed) => {
          requireAdmin(ctx);
          if (typeof args.id !== 'string') throw badInput('id', 'must be a job id');
          const attrs = await handle.getJob(args.id);
          return attrs && jobView(attrs);
        },
      },
      Mutation: {
        requestReport: async (_: unknown, args: { campaignId: unknown }, ctx: Signed) => {
          requireAdmin(ctx);
          const id = campaignId(args.campaignId);
          const known = (await ordering.meta(id)) ?? (await prisma.campaign.findUnique({ where: { id }, select: { id: true } }));
          if (!known) throw notFound('campaign');
          return jobView((await queueReport(handle, id)).attrs);
        },
        issue: async (_: unknown, args: { campaignId: unknown }, ctx: Signed) => {
          requireAdmin(ctx);
          const id = campaignId(args.campaignId);
          const meta = await ordering.meta(id);
          if (!meta && !(await prisma.campaign.findUnique({ where: { id }, select: { id: true } }))) throw notFound('campaign');
          // the read model does not keep the issuance: without Redis's meta the job walks, and the issuer passes other campaigns by
          if (meta && (meta.terms.issuance ?? 'MINTED') !== 'PROVIDER')
            throw badInput(
              'campaignId',
              'is not a PROVIDER campaign: its winners get their codes at the decision or from its loaded codes',
            );
          return jobView((await queueIssue(handle, id)).attrs);
        },
        replay: async (_: unknown, args: { target: unknown; campaignId?: unknown }, ctx: Signed) => {
          requireAdmin(ctx);
          if (typeof args.target !== 'string' || !TARGETS.has(args.target)) throw badInput('target', 'must be REDIS, DATABASE or ALL');
          const id = args.campaignId === undefined || args.campaignId === null ? null : campaignId(args.campaignId);
          return jobView((await queueReplay(handle, args.target as ReplayTarget, id)).attrs);
        },
      },
    },
    stop: async () => {
      orphans.stop();
      await handle.close();
    },
  };
};
