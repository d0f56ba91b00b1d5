import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_FAULTS, SIM_TOKEN, startProviderSim } from '../provider-sim/server.js';

const number =
  (min: number, max: number, int = false) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`expected ${int ? 'an integer' : 'a number'} from ${min} to ${max}`);
    }
    return n;
  };

const program = new Command()
  .name('provider:sim')
  .description('a gifticon provider over HTTP for local runs, tests and benches: POST /vouchers, GET /stats, POST /admin/faults')
  .option('--port <port>', 'port to listen on (0: any free one, printed)', number(0, 65535, true), 4390)
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--latency-ms <ms>', 'median latency of an answer (log-normal around it)', number(0, 60_000, true), DEFAULT_FAULTS.latencyMs)
  .option('--rate <n>', 'requests a second before 429 with Retry-After (0: no limit)', number(0, 1e9, true), DEFAULT_FAULTS.rate)
  .option('--error-rate <share>', 'share of requests answered 5xx, nothing issued', number(0, 1), DEFAULT_FAULTS.errorRate)
  .option('--timeout-rate <share>', 'share of requests issued and never answered', number(0, 1), DEFAULT_FAULTS.timeoutRate)
  .option('--permanent-rate <share>', 'share of new keys answered 422, nothing issued', number(0, 1), DEFAULT_FAULTS.permanentRate)
  .option('--token <token>', 'the bearer token callers must send (default: PROVIDER_TOKEN, else the development token)')
  .addHelpText(
    'after',
    '\nGET /stats answers {"issued", "keys", "doubles", ...}; POST /admin/faults with the bearer token and\n' +
      'a JSON body such as {"down": true} or {"errorRate": 0.5} changes the faults while it runs.',
  )
  .parse();

const o = program.opts<{
  port: number;
  host: string;
  latencyMs: number;
  rate: number;
  errorRate: number;
  timeoutRate: number;
  permanentRate: number;
  token?: string;
}>();

const sim = await startProviderSim({
  port: o.port,
  host: o.host,
  token: o.token ?? (process.env.PROVIDER_TOKEN || SIM_TOKEN),
  latencyMs: o.latencyMs,
  rate: o.rate,
  errorRate: o.errorRate,
  timeoutRate: o.timeoutRate,
  permanentRate: o.permanentRate,
});
const f = sim.faults();
console.log(
  `provider simulator on ${sim.url}: latency ${f.latencyMs} ms, rate ${f.rate || 'unlimited'}/s, ` +
    `5xx ${f.errorRate}, timeouts after issuing ${f.timeoutRate}, permanent 4xx ${f.permanentRate}`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  const s = sim.stats();
  await sim.close();
  console.log(`stopped: ${s.issued} vouchers issued to ${s.keys} keys, ${s.doubles} doubles, ${s.requests} requests`);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
