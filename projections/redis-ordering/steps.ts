/**
 * The single writer's own count of its steps on each campaign (`seq` in the meta, lua/create.lua):
 * what this process wrote, per partition. Redis replication is asynchronous, so a failover can lose
 * the last writes; a campaign whose `seq` is below this count went back in time, and is repaired
 * from the log before anything is decided or answered from it. Forgotten when the partition is
 * rebuilt (the rebuild counts anew).
 */
export class WriterSteps {
  private readonly seqs = new Map<number, Map<string, number>>();

  /** the count this process expects of the campaign, or null when it has written none yet */
  of(partition: number, campaignId: string): number | null {
    return this.seqs.get(partition)?.get(campaignId) ?? null;
  }

  set(partition: number, campaignId: string, seq: number): void {
    let m = this.seqs.get(partition);
    if (!m) this.seqs.set(partition, (m = new Map()));
    m.set(campaignId, seq);
  }

  drop(partition: number, campaignId: string): void {
    this.seqs.get(partition)?.delete(campaignId);
  }

  known(partition: number): [string, number][] {
    return [...(this.seqs.get(partition) ?? [])];
  }

  forget(partition: number): void {
    this.seqs.delete(partition);
  }
}

/**
 * Checks the answers of a pipeline's counted steps in order: each must be the expected count plus
 * one (a script found the campaign behind answers -1; a campaign re-created from nothing answers 1).
 * Updates `steps` and returns the campaigns found behind.
 */
export function checkSteps(steps: WriterSteps, partition: number, answers: readonly { campaignId: string; seq: number }[]): string[] {
  const behind = new Set<string>();
  for (const { campaignId, seq } of answers) {
    if (behind.has(campaignId)) continue;
    const expected = steps.of(partition, campaignId);
    if (seq < 0 || (expected !== null && seq < expected + 1)) behind.add(campaignId);
    else if (seq > 0) steps.set(partition, campaignId, seq);
  }
  return [...behind];
}
