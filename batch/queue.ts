import type { Job } from 'agenda';
import { JOBS_TABLE, type AgendaHandle } from './agenda.js';
import type { ReplayData, ReplayTarget } from './replay.js';
import type { ReportData } from './report.js';
import type { IssueData } from './issue.js';

/** Creating jobs: the one way the API, the CLI and the reconciler queue work. */

export async function queueReplay(handle: AgendaHandle, target: ReplayTarget, campaignId: string | null): Promise<Job<ReplayData>> {
  return handle.agenda.now<ReplayData>('replay', { target, campaignId, ...stamp(handle) });
}

export async function queueReport(handle: AgendaHandle, campaignId: string): Promise<Job<ReportData>> {
  return handle.agenda.now<ReportData>('report', { campaignId, trigger: 'demand', ...stamp(handle) });
}

export async function queueIssue(handle: AgendaHandle, campaignId: string): Promise<Job<IssueData>> {
  return handle.agenda.now<IssueData>('issue', { campaignId, ...stamp(handle) });
}

/** The log a job is queued for (`LogStamped`). */
export const stamp = (handle: Pick<AgendaHandle, 'logTag'>): { log?: string } => (handle.logTag ? { log: handle.logTag } : {});

/**
 * A replay of `target` (or ALL) covering `campaignId` (or every campaign) that is queued or running:
 * the reconciler does not queue a second one beside it.
 */
export async function unfinishedReplay(handle: AgendaHandle, target: 'REDIS' | 'DATABASE', campaignId: string): Promise<string | null> {
  const r = await handle.pool.query<{ id: string }>(
    `SELECT id FROM "${JOBS_TABLE}"
      WHERE name = 'replay'
        AND data->>'target' IN ($1, 'ALL')
        AND (data->>'campaignId' = $2 OR data->>'campaignId' IS NULL)
        AND (next_run_at IS NOT NULL OR last_finished_at IS NULL OR last_finished_at < last_run_at)
      LIMIT 1`,
    [target, campaignId],
  );
  return r.rows[0]?.id ?? null;
}
