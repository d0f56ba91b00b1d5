import type { Config } from '../../config.js';
import { CodeVault } from '../../infra/codeKeys/vault.js';
import type { PrismaClient } from '../../infra/prisma/client.js';
import type { CodeAccess } from '../codes.js';
import { requireAdmin, type Signed } from '../guards.js';
import { connectionOf, decodeCursor, pageSize } from './connections.js';

/** The API's CodeAccess: codes opened by a CodeVault, admin reads recorded in `code_reads`. */
export function codeAccess(prisma: PrismaClient, config: Config, vault = new CodeVault(prisma, config.CODE_KEYS)): CodeAccess {
  return {
    open: (campaignId, stored) => vault.openOrNull(campaignId, stored),
    readRole: config.CODES_READ_ROLE,
    record: async (read) => {
      await prisma.codeRead.create({ data: { ...read, readAt: new Date() } });
    },
  };
}

/** `codeReads`: every admin read of codes, newest first; any admin may list them. */
export function codeReadResolvers(prisma: PrismaClient) {
  return {
    Query: {
      codeReads: async (_: unknown, args: { first?: unknown; after?: unknown }, ctx: Signed) => {
        requireAdmin(ctx);
        const first = pageSize(args.first, 100);
        const after = decodeCursor('codeReads', args.after);
        const [rows, totalCount] = await Promise.all([
          prisma.codeRead.findMany({ where: after ? { id: { lt: after.id } } : {}, orderBy: { id: 'desc' }, take: first + 1 }),
          prisma.codeRead.count(),
        ]);
        return connectionOf(
          rows,
          first,
          totalCount,
          (r) => ({ list: 'codeReads', id: r.id }),
          (r) => ({ reader: r.reader, campaignId: r.campaignId, field: r.field, codes: r.codes, readAt: r.readAt }),
        );
      },
    },
  };
}
