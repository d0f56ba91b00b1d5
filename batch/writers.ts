import { AssignerProtocol, type Admin } from 'kafkajs';
import type { Config } from '../src/config.js';
import { readSideGroup, readSideGroupsWith } from '../src/read-side/consumerHost.js';
import { PRISMA_PROJECTION } from '../projections/prisma-tables/projector.js';
import { Permanent } from './runtime.js';

/**
 * A replay rewinds the one writer of a projection, and a report waits for one: with no writer
 * running they would wait forever. So they ask the writer's consumer group who owns the partitions
 * first, and keep asking while they wait (a writer can die mid-wait). Answering that is a
 * describeGroups call; the rules on its answer are pure and below.
 */

export type Projection = 'redis' | 'database';

export interface WriterRole {
  /** the `--roles` name that starts it */
  role: 'writer' | 'projector';
  /** its consumer group (for a processor: the group of a process that runs it alone) */
  group: string;
  topic: string;
  /** a processor of the read side: every consumer host group that runs it owns partitions */
  processor?: { name: string; groupsWith: (groupIds: readonly string[]) => string[] };
}

export function writerOf(config: Pick<Config, 'groups' | 'topics'>, projection: Projection): WriterRole {
  if (projection === 'redis') return { role: 'writer', group: config.groups.writer, topic: config.topics.events };
  return {
    role: 'projector',
    group: readSideGroup(config, [PRISMA_PROJECTION]),
    topic: config.topics.events,
    processor: { name: PRISMA_PROJECTION, groupsWith: (ids) => readSideGroupsWith(config, PRISMA_PROJECTION, ids) },
  };
}

export const startCommand = (w: WriterRole) => `npm start -- --roles ${w.role}`;

/** What the group says now. */
export interface Ownership {
  /** Stable, Empty, PreparingRebalance, CompletingRebalance, Dead, … */
  state: string;
  members: number;
  /** partition → the member that owns it */
  owners: Map<number, string>;
}

export async function describeOwnership(admin: Admin, w: WriterRole): Promise<Ownership> {
  // a processor runs in whichever consumer hosts have it (processes with other roles beside it)
  const ids = w.processor ? w.processor.groupsWith((await admin.listGroups()).groups.map((g) => g.groupId)) : [w.group];
  if (ids.length === 0) return { state: 'Dead', members: 0, owners: new Map() };
  const { groups } = await admin.describeGroups(ids);
  const owners = new Map<number, string>();
  let members = 0;
  let state = 'Dead';
  for (const g of groups.filter((x) => ids.includes(x.groupId))) {
    members += g.members.length;
    // a group with members rebalancing says so: its partitions are owned in a moment
    if (state === 'Dead' || (g.members.length > 0 && g.state !== 'Empty' && g.state !== 'Dead')) state = g.state;
    for (const m of g.members) {
      // an empty assignment (a member that has just joined) decodes to null
      const a = m.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null;
      for (const p of a?.assignment[w.topic] ?? []) owners.set(p, m.memberId);
    }
  }
  return { state, members, owners };
}

/**
 * The partitions nobody writes. A group rebalancing with members in it is a writer (re)joining:
 * it owns them in a moment, so nothing counts as missing yet.
 */
export function unowned(o: Ownership, partitions: readonly number[]): number[] {
  if (o.members > 0 && (o.state === 'PreparingRebalance' || o.state === 'CompletingRebalance')) return [];
  return partitions.filter((p) => !o.owners.has(p));
}

const list = (ps: readonly number[]) => `${ps.length === 1 ? 'partition' : 'partitions'} ${ps.join(', ')}`;

/** What a wait for the writer says while it waits (the progress line). */
export function waitingForWriter(w: WriterRole, o: Ownership, missing: readonly number[], leftMs: number): string {
  const group = o.members === 0 ? `group ${w.group} has no member` : `group ${w.group}: ${o.members} member(s), ${o.state}`;
  return `waiting for a ${w.role} to own ${list(missing)} (${group}; start one: ${startCommand(w)}; gives up in ${Math.max(0, Math.ceil(leftMs / 1000))} s)`;
}

/** A writer missing: whose, which partitions, and what its group said. */
export interface Missing {
  writer: WriterRole;
  partitions: readonly number[];
  ownership: Ownership;
}

/**
 * The one line an operator gets when no writer runs: the partitions, and the command that starts
 * the writers missing (one command for both of ALL). `doing` says what was under way (a rebuild
 * left half done finishes by itself once the writer is back), `then` what to do after.
 */
export function noWriterLine(missing: readonly Missing[], opts: { doing?: string; then: string }): string {
  const each = missing.map(({ writer: w, partitions, ownership: o }) => {
    const group =
      o.members === 0
        ? `consumer group ${w.group} has no member`
        : `consumer group ${w.group} has ${o.members} member(s), none owning them`;
    return `no ${w.role} owns ${list(partitions)} of ${w.topic} (${group})`;
  });
  const roles = [...new Set(missing.map((m) => m.writer.role))].join(',');
  const doing = opts.doing ? `${opts.doing}: ` : '';
  return `${doing}${each.join('; ')}: start ${missing.length > 1 ? 'them' : 'one'} with \`npm start -- --roles ${roles}\`, ${opts.then}`;
}

/** A job (or command) that cannot go on without a writer: retrying will not start one. */
export class NoWriter extends Permanent {
  constructor(
    readonly missing: readonly Missing[],
    line: { doing?: string; then: string },
  ) {
    super(noWriterLine(missing, line));
  }

  /**
   * One NoWriter for several writers missing at once (ALL): one line, one command. `alsoMissing`
   * are writers still within their grace when another's ended: missing all the same.
   */
  static of(errors: readonly NoWriter[], line: { doing?: string; then: string }, alsoMissing: readonly Missing[] = []): NoWriter {
    const all = [...errors.flatMap((e) => e.missing), ...alsoMissing].sort((a, b) => a.writer.role.localeCompare(b.writer.role));
    return new NoWriter(all, line);
  }
}

/**
 * Follows the owners of some partitions across a wait. `check` asks the group at most once every
 * `everyMs` and throws NoWriter once a partition has had no owner for `graceMs` in a row (a writer
 * that starts, or the group settling after a member died, gets that long).
 */
export class WriterWatch {
  private last: { at: number; o: Ownership } | null = null;
  private missingSince: number | null = null;

  constructor(
    readonly writer: WriterRole,
    private readonly describe: () => Promise<Ownership>,
    private readonly graceMs: number,
    private readonly opts: { everyMs?: number; now?: () => number } = {},
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * The partitions of `partitions` without an owner now, and the line that says so (null when
   * every one has one). Throws NoWriter, with `doing` and `then` in its line, once the grace is over.
   */
  async check(
    partitions: readonly number[],
    line: { doing?: string; then: string },
  ): Promise<{ missing: number[]; waiting: string | null; ownership: Ownership }> {
    const now = this.now();
    if (!this.last || now - this.last.at >= (this.opts.everyMs ?? 1000)) this.last = { at: now, o: await this.describe() };
    const { o } = this.last;
    const missing = unowned(o, partitions);
    if (missing.length === 0) {
      this.missingSince = null;
      return { missing, waiting: null, ownership: o };
    }
    this.missingSince ??= now;
    const left = this.missingSince + this.graceMs - now;
    if (left <= 0) throw new NoWriter([{ writer: this.writer, partitions: missing, ownership: o }], line);
    return { missing, waiting: waitingForWriter(this.writer, o, missing, left), ownership: o };
  }
}

/** How long a job waits for a writer that is not there before it fails. */
export const WRITER_WAIT_MS = 10_000;

const int = (x: bigint | number | string) => Number(x).toLocaleString('en-US');

/** How far a writer got on the partitions a job waits for. */
export interface Reach {
  partition: number;
  /** the next offset the writer reads (null: it has not started) */
  at: bigint | null;
  until: bigint;
}

/**
 * "waiting for the writer of partition 3 to reach offset 41,200 (at 12,000)": the partitions not
 * there yet, furthest behind first, three at most.
 */
export function reachLine(w: WriterRole, parts: readonly Reach[]): string {
  const behind = parts
    .filter((r) => r.at === null || r.at < r.until)
    .sort((a, b) => Number(b.until - (b.at ?? 0n) - (a.until - (a.at ?? 0n))));
  if (behind.length === 0) return `the ${w.role} has reached the end`;
  const one = (r: Reach) =>
    `partition ${r.partition} to reach offset ${int(r.until)} (${r.at === null ? 'not started' : `at ${int(r.at)}`})`;
  const more = behind.length > 3 ? ` and ${behind.length - 3} more` : '';
  return `waiting for the ${w.role} of ${behind.slice(0, 3).map(one).join(', ')}${more}`;
}
