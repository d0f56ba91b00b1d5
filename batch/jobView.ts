import type { JobParameters } from 'agenda';

/** A job as GraphQL's `Job` shows it (CONTRACT.md). */
export interface JobView {
  id: string;
  name: string;
  status: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  /** 0..1 */
  progress: number;
  startedAt: Date | null;
  finishedAt: Date | null;
  error: string | null;
}

const time = (d: Date | string | null | undefined) => (d ? new Date(d).getTime() : null);

/**
 * Agenda keeps no status column; it follows from its timestamps:
 * - locked and started after its last finish: RUNNING (also a job whose worker died, until its lock
 *   expires and another worker resumes it: it is not done);
 * - due again (`nextRunAt`): QUEUED, a retry after a failure included (its error is shown);
 * - finished by a failure with no retry left: FAILED, kept with its error;
 * - finished otherwise: SUCCEEDED.
 * Agenda's progress is 0..100.
 */
export function jobView(attrs: JobParameters): JobView {
  const lastRun = time(attrs.lastRunAt);
  const lastFinished = time(attrs.lastFinishedAt);
  const failed = time(attrs.failedAt);
  const runningSince = lastRun !== null && (lastFinished === null || lastFinished < lastRun) ? lastRun : null;
  let status: JobView['status'];
  if (runningSince !== null && attrs.lockedAt) status = 'RUNNING';
  else if (attrs.nextRunAt) status = 'QUEUED';
  else if (runningSince !== null)
    status = 'RUNNING'; // stopped mid-run, waiting to be picked up again
  else if (failed !== null && lastFinished !== null && failed >= lastFinished) status = 'FAILED';
  else if (lastFinished !== null) status = 'SUCCEEDED';
  else status = 'QUEUED';
  const raw = typeof attrs.progress === 'number' && Number.isFinite(attrs.progress) ? attrs.progress / 100 : 0;
  return {
    id: String(attrs._id),
    name: attrs.name,
    status,
    progress: status === 'SUCCEEDED' ? 1 : Math.min(1, Math.max(0, raw)),
    startedAt: attrs.lastRunAt ? new Date(attrs.lastRunAt) : null,
    finishedAt: status === 'SUCCEEDED' || status === 'FAILED' ? new Date(attrs.lastFinishedAt!) : null,
    error: status === 'SUCCEEDED' ? null : (attrs.failReason ?? null),
  };
}
