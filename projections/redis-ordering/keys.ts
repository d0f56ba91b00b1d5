import type { RedisClient } from './client.js';

/**
 * The one key layout of the Redis ordering projection. Nothing outside this folder builds a key.
 *
 * A campaign's keys share the hash tag `{c:<id>}`, so they live in one slot (one Redis Cluster
 * node) and a Lua script may touch them together. Keys about a partition of the log (its rebuild
 * protocol) share the tag `{p:<topic>:<partition>}`.
 */
/** A partition of the log: where a campaign's stream is, and whose rebuild it waits on. */
export interface PartitionRef {
  topic: string;
  partition: number;
}

/** What the rebuild protocol needs of the projection: its client and its key layout. */
export interface Store {
  readonly redis: RedisClient;
  readonly keys: Keys;
  /** the log this process follows (identity.ts); null: sentinels are set without one */
  readonly logTag?: string | null;
}

export class Keys {
  constructor(readonly prefix: string) {}

  private c(id: string) {
    return `${this.prefix}:{c:${id}}`;
  }
  /** the campaign's terms and counters (hash) */
  meta = (id: string) => `${this.c(id)}:meta`;
  /** the line: user → first log offset (ZSET, rank = place) */
  line = (id: string) => `${this.c(id)}:line`;
  /** tickets appended, not yet placed (hash user → ticket) */
  pending = (id: string) => `${this.c(id)}:pending`;
  /** winners (hash user → "position|wonAt") */
  won = (id: string) => `${this.c(id)}:won`;
  /** gifticons (hash user → JSON) */
  gifts = (id: string) => `${this.c(id)}:gifts`;
  /** PROVIDER winners whose issuance was parked (hash user → when, the last IssuanceParked): FAILED until a gifticon */
  parkedIssuances = (id: string) => `${this.c(id)}:parked-issuances`;
  /** an INVENTORY campaign's codes kept, sealed, in load order (list: the k-th goes to the k-th winner) */
  codes = (id: string) => `${this.c(id)}:codes`;
  /** the keyed hashes of the codes kept (set), to find duplicates without opening a code */
  codeHashes = (id: string) => `${this.c(id)}:code-hashes`;
  /** the chunks loaded (hash chunk id → "loaded|duplicate indices"): a chunk applied twice counts once */
  chunks = (id: string) => `${this.c(id)}:chunks`;
  /** one user's append claim: one request of a user appends at a time */
  claim = (id: string, userId: string) => `${this.c(id)}:claim:${userId}`;
  /** a spent proof-of-work solution, named by its challenge (SET NX with a TTL past the challenge's expiry) */
  solution = (id: string, challenge: string) => `${this.c(id)}:pow:${challenge}`;
  /** the API's request counter, carried while a replay rebuilds the meta that holds it */
  carry = (id: string) => `${this.c(id)}:requests-carry`;
  /** all of a campaign's keys, for SCAN */
  pattern = (id: string) => `${this.c(id)}:*`;
  /** pub/sub: who changed in a campaign (tagged like its keys, so a sharded channel fits the same slot) */
  changes = (id: string) => `${this.c(id)}:changes`;
  /** the sockets a user holds open across API processes (ZSET socket id → lease end): a slot of its own */
  socketsOf = (userId: string) => `${this.prefix}:{u:${userId}}:sockets`;
  /** the stem of a rate budget's keys (rate-limiter-flexible adds `:<identity>`: one key, one slot) */
  budget = (name: string) => `${this.prefix}:budget:${name}`;
  /** every campaign key of the prefix, for SCAN */
  anyCampaign = () => `${this.prefix}:{c:*`;
  /** every partition key of the prefix (sentinels, rebuilds, markers), for SCAN */
  anyPartition = () => `${this.prefix}:{p:*`;
  /** every key of the prefix, for SCAN (a test's or a bench's own keys, never a FLUSHALL) */
  all = () => `${this.prefix}:*`;
  /** the campaign a key of this layout belongs to, or null */
  campaignOf(key: string): string | null {
    const head = `${this.prefix}:{c:`;
    if (!key.startsWith(head)) return null;
    const end = key.indexOf('}:', head.length);
    return end > head.length ? key.slice(head.length, end) : null;
  }

  private p(topic: string, partition: number) {
    return `${this.prefix}:{p:${topic}:${partition}}`;
  }
  /** set (to the log's identity and a token new each time, identity.ts) once a partition's projection is complete up to its writer's position */
  built = (topic: string, partition: number) => `${this.p(topic, partition)}:built`;
  /** every partition sentinel of the prefix, whatever its topic, for SCAN */
  anyBuilt = () => `${this.prefix}:{p:*}:built`;
  /** the partition a partition key (any of `p`'s) belongs to, or null */
  partitionOf(key: string): PartitionRef | null {
    const m = /^\{p:(.+):(\d+)\}:/.exec(key.slice(this.prefix.length + 1));
    return key.startsWith(`${this.prefix}:`) && m ? { topic: m[1]!, partition: Number(m[2]) } : null;
  }
  /** the partition a sentinel key names, or null */
  builtOf(key: string): PartitionRef | null {
    const m = /^\{p:(.+):(\d+)\}:built$/.exec(key.slice(this.prefix.length + 1));
    return key.startsWith(`${this.prefix}:`) && m ? { topic: m[1]!, partition: Number(m[2]) } : null;
  }
  /** the single writer's step count per campaign (hash campaign → seq), for readers to tell a campaign that lost writes */
  seqs = (topic: string, partition: number) => `${this.p(topic, partition)}:seqs`;
  /** progress of a rebuild under way: JSON {next, until} offsets */
  rebuild = (topic: string, partition: number) => `${this.p(topic, partition)}:rebuild`;
  /** pub/sub: a replay job wiped the partition (its writer rebuilds it at once instead of at its next look at `built`) */
  wiped = (topic: string, partition: number) => `${this.p(topic, partition)}:wiped`;
  /** held (with a short TTL, renewed as the wipe goes on) while a replay job wipes the partition's campaigns: its writer waits to rebuild until the wipe ends */
  wiping = (topic: string, partition: number) => `${this.p(topic, partition)}:wiping`;
  /** set once a replay job started on a partition: 'wiping', then 'done:<campaigns>' */
  replayMarker = (topic: string, partition: number, jobId: string) => `${this.p(topic, partition)}:replay:${jobId}`;

  /** the pub/sub channel on which one API process hears its decisions */
  reply = (instance: string) => `${this.prefix}:reply:${instance}`;
  /** every campaign id this projection knows (ZSET by creation time), for listing and cleanup */
  campaigns = () => `${this.prefix}:campaigns`;
}
