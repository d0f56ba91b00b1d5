import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import { createHttpServer, type ApiEndpoint } from './api/server.js';
import { describeError, type Health, type HealthReporter } from './health.js';
import type { PrismaClient } from './infra/prisma/client.js';
import type { Metrics } from './metrics.js';
import type { RoleHandle } from './plugin.js';
import type { RedisClient } from '../projections/redis-ordering/index.js';
import type { ReadSideHandle, ThreadMetrics } from './read-side/threaded.js';

/**
 * The process's HTTP server, listening from the start: /healthz and /readyz answer before Kafka is
 * reached, /metrics too, and GraphQL once every role runs (`serve`). It keeps what /readyz reads.
 */
export class Front {
  readonly server: ReturnType<typeof createHttpServer>;
  /** null while the brokers answer, else why not */
  kafkaDown: string | null;
  /** the read side's consumer host, in this thread or its own, once started */
  readSide: ReadSideHandle | null = null;
  /** the database's first answer at start, whatever it was, told to the postgres part of health */
  readonly dbReporter: HealthReporter;
  private readonly dbAnswered: Promise<void>;
  private handles: readonly RoleHandle[] = [];
  private started = false;
  private endpoint: ApiEndpoint | null = null;
  /** what the read side's thread showed of itself at this scrape */
  private readSideMetrics: ThreadMetrics | null = null;

  constructor(
    config: Config,
    private readonly roles: readonly string[],
    private readonly deps: { redis: RedisClient; prisma: PrismaClient; metrics: Metrics; health: Health },
  ) {
    const { metrics, health } = deps;
    this.kafkaDown = `connecting to ${config.KAFKA_BROKERS.join(',')}`;
    let dbAnswer!: () => void;
    this.dbAnswered = new Promise<void>((r) => (dbAnswer = r));
    const postgres = health.reporter('postgres');
    this.dbReporter = {
      ok: (part) => (postgres.ok(part), dbAnswer()),
      failing: (err, part) => (postgres.failing(err, part), dbAnswer()),
    };
    this.server = createHttpServer(() => this.endpoint ?? (roles.includes('api') ? 'starting' : null), {
      ready: () => this.readiness(),
      metrics: async () => {
        this.readSideMetrics = (await this.readSide?.metrics?.()) ?? null;
        return {
          contentType: metrics.registry.contentType,
          body: (await metrics.registry.metrics()) + (this.readSideMetrics?.text ?? ''),
        };
      },
      observe: (op, s, ok) => metrics.requests.observe({ operation: op, ok: String(ok) }, s),
      limits: metrics.limits,
      edge: metrics.edge,
      metricsToken: config.METRICS_TOKEN,
    });
  }

  async listen(port: number): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(port, '0.0.0.0', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** Every role runs: /readyz asks them, and GraphQL is answered by `endpoint` (the api role's). */
  serve(handles: readonly RoleHandle[], endpoint: ApiEndpoint | null): void {
    this.handles = handles;
    this.endpoint = endpoint;
    this.started = true;
  }

  /** Records the read side's thread parked, per consumer, at the last scrape. */
  readSideParked(): Iterable<[string, number]> {
    return this.readSideMetrics?.parked ?? [];
  }

  private async readiness() {
    const { redis, prisma, health } = this.deps;
    // the database's first answer to the migration runner says why it fails better than a probe's
    await Promise.race([this.dbAnswered, new Promise((r) => setTimeout(r, 2000).unref())]);
    const failing: Record<string, string> = {};
    // a server that never answers (a dropped packet, not a refused connection) must not hang the probe
    const probe = (name: string, p: Promise<unknown>) =>
      Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref())]).then(
        () => true,
        (err: unknown) => ((failing[name] = describeError(err)), false),
      );
    const [redisOk, pgOk] = await Promise.all([probe('redis', redis.ping()), probe('postgres', prisma.$queryRaw`SELECT 1`)]);
    if (this.kafkaDown) failing.kafka = this.kafkaDown;
    Object.assign(failing, health.failing());
    // consumers: every role started and its consumers assigned; failing: what is failing now, with its last error
    const checks: Record<string, boolean> = {
      kafka: !this.kafkaDown,
      redis: redisOk,
      postgres: pgOk,
      consumers: this.started && this.handles.every((h) => h.ready()),
    };
    // degraded: slower or paused work that leaves the process serving (the status code ignores it)
    const degraded = Object.assign({}, ...this.handles.map((h) => h.degraded?.() ?? {})) as Record<string, string>;
    const ok = Object.values(checks).every(Boolean) && Object.keys(failing).length === 0;
    // said only while something is: a body that held nothing more before holds nothing more now
    return { ok, checks, failing, ...(Object.keys(degraded).length > 0 && { degraded }) };
  }
}
