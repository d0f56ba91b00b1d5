import { Command } from 'commander';
import { Registry } from 'prom-client';
import { table } from '../src/cli/crowd.js';
import { ProviderClient, type IssueOutcome } from '../src/issuer/client.js';
import { providerMetrics } from '../src/issuer/metrics.js';
import { httpProvider } from '../src/issuer/provider.js';
import { SIM_TOKEN } from '../src/provider-sim/server.js';
import { startSimProcess } from './providerSim.js';

/**
 * `npm run bench:provider`: the provider client alone against `npm run provider:sim` in a process of
 * its own, as the issuer will call it: how long `--vouchers` winners take to be issued or given up
 * at the simulator's latency, faults and limit, the calls a second, the retries, and the doubles
 * the simulator counted. No Kafka, no database: what pacing and retries cost by themselves, the
 * floor under the issuer's own bench.
 */
const int = (v: string) => Number.parseInt(v, 10);
const opts = new Command()
  .option('--vouchers <n>', 'winners to issue', int, 20_000)
  .option('--latency-ms <ms>', "the simulator's median latency", int, 200)
  .option('--rate <n>', "the simulator's limit a second (429 beyond)", int, 500)
  .option('--error-rate <share>', "the simulator's 5xx share", Number, 0.05)
  .option('--timeout-rate <share>', "the simulator's share of answers lost after issuing", Number, 0)
  .option('--permanent-rate <share>', "the simulator's permanent 4xx share", Number, 0.01)
  .option('--client-rate <n>', 'PROVIDER_RATE_PER_SEC', int, 490)
  .option('--concurrency <n>', 'PROVIDER_CONCURRENCY', int, 160)
  .option('--timeout-ms <ms>', 'PROVIDER_TIMEOUT_MS', int, 2000)
  .parse()
  .opts<{
    vouchers: number;
    latencyMs: number;
    rate: number;
    errorRate: number;
    timeoutRate: number;
    permanentRate: number;
    clientRate: number;
    concurrency: number;
    timeoutMs: number;
  }>();

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? 0;

async function main() {
  const sim = await startSimProcess(opts);
  const registry = new Registry();
  const client = new ProviderClient(httpProvider({ url: sim.url, token: SIM_TOKEN }), {
    ratePerSec: opts.clientRate,
    concurrency: opts.concurrency,
    timeoutMs: opts.timeoutMs,
    maxAttempts: 8,
    budgetMs: 60_000,
    events: providerMetrics(registry),
  });
  const opened: number[] = [];
  client.onBreaker((s) => s === 'open' && opened.push(Date.now()));
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  const times: number[] = [];
  const outcomes: IssueOutcome[] = await Promise.all(
    Array.from({ length: opts.vouchers }, async (_, i) => {
      const o = await client.issue({ idempotencyKey: `bench:${t0}:${i}`, product: 'bench', recipient: `u${i}`, campaignId: 'bench' });
      times.push(Date.now() - t0);
      return o;
    }),
  );
  const seconds = (Date.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const stats = (await (await fetch(`${sim.url}/stats`)).json()) as Record<string, number>;
  await sim.stop();

  const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values.reduce((s, v) => s + v.value, 0);
  const calls = await metric('firstcome_provider_calls_total');
  const byOutcome = (await registry.getSingleMetric('firstcome_provider_calls_total')!.get()).values
    .map((v) => `${v.labels.outcome} ${fmt(v.value)}`)
    .join(', ');
  const by = (k: IssueOutcome['kind']) => outcomes.filter((o) => o.kind === k).length;
  console.log(
    `\n${fmt(opts.vouchers)} vouchers; simulator ${opts.latencyMs} ms median, ${opts.rate}/s, 5xx ${opts.errorRate}, ` +
      `lost answers ${opts.timeoutRate}, 4xx ${opts.permanentRate}; client ${opts.clientRate}/s, ${opts.concurrency} at once\n`,
  );
  console.log(
    table([
      ['figure', 'value'],
      ['all done in', `${fmt(seconds, 1)} s`],
      ['ideal at the limit', `${fmt(opts.vouchers / Math.min(opts.rate, opts.clientRate), 1)} s`],
      ['calls', fmt(calls)],
      ['calls a second', fmt(calls / seconds)],
      ['calls by answer', byOutcome],
      ['retries', fmt(await metric('firstcome_provider_retries_total'))],
      ['issued', fmt(by('issued'))],
      ['permanent (parked)', fmt(by('permanent'))],
      ['exhausted (parked)', fmt(by('exhausted'))],
      ['breaker opened', fmt(opened.length)],
      ['done at p50 / p99', `${fmt(pct(times, 50) / 1000, 1)} s / ${fmt(pct(times, 99) / 1000, 1)} s`],
      ['simulator: issued / keys / doubles', `${stats.issued} / ${stats.keys} / ${stats.doubles}`],
      ['client CPU per call', `${fmt((cpu.user + cpu.system) / calls)} µs`],
    ]),
  );
  if (stats.doubles !== 0 || by('issued') + by('permanent') + by('exhausted') !== opts.vouchers) process.exitCode = 1;
}

await main();
